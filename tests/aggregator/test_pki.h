// Throwaway certificates for TLS tests, made with OpenSSL's C API (libssl-dev is a declared
// build dependency; the openssl command-line tool is not installed by scripts/install-deps).
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace tripline::testing {

using KeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using CertPtr = std::unique_ptr<X509, decltype(&X509_free)>;

struct Credential {
  KeyPtr key{nullptr, &EVP_PKEY_free};
  CertPtr cert{nullptr, &X509_free};
};

// A fresh P-256 key and a certificate for it, valid from an hour ago for a day, signed by
// `issuer` (self-signed when null). `extensions` are (NID, OpenSSL config value) pairs.
Result<Credential> Issue(const std::string& common_name, const Credential* issuer,
                         const std::vector<std::pair<int, std::string>>& extensions);
// A CA certificate.
Result<Credential> IssueCa(const std::string& common_name);
// A leaf certificate of `ca` with the extended key usage (serverAuth, clientAuth) and the
// subject alternative names `san` in OpenSSL's syntax ("IP:127.0.0.1,URI:tripline:..."),
// none when empty.
Result<Credential> IssueLeaf(const std::string& common_name, const Credential& ca,
                             const std::string& extended_usage, const std::string& san);

// PEM files: a certificate (0644) and a private key (0600).
Status WriteCert(const std::string& path, const Credential& c);
Status WriteKey(const std::string& path, const Credential& c);

}  // namespace tripline::testing
