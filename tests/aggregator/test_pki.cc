#include "tests/aggregator/test_pki.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <sys/stat.h>

#include <fstream>
#include <functional>

namespace tripline::testing {
namespace {
// The oldest error on OpenSSL's queue, for messages; the queue is emptied.
std::string OpenSslError(const std::string& what) {
  char buf[256] = "no OpenSSL error";
  if (const unsigned long e = ERR_peek_error(); e != 0) ERR_error_string_n(e, buf, sizeof(buf));
  ERR_clear_error();
  return what + ": " + buf;
}

Status AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) return Status::Internal(OpenSslError("extension " + value));
  const bool added = X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return added ? Status::Ok() : Status::Internal(OpenSslError("adding " + value));
}

}  // namespace

// A fresh P-256 key and a certificate for it, valid from an hour ago for a day, signed by
// `issuer` (self-signed when null). `extensions` are (NID, OpenSSL config value) pairs.
Result<Credential> Issue(const std::string& common_name, const Credential* issuer,
                         const std::vector<std::pair<int, std::string>>& extensions) {
  static long serial = 1;
  Credential out;
  out.key.reset(EVP_EC_gen("P-256"));
  if (!out.key) return Status::Internal(OpenSslError("EC key"));
  out.cert.reset(X509_new());
  X509* cert = out.cert.get();
  if (cert == nullptr || X509_set_version(cert, X509_VERSION_3) != 1 ||
      ASN1_INTEGER_set(X509_get_serialNumber(cert), serial++) != 1 ||
      X509_gmtime_adj(X509_getm_notBefore(cert), -3600) == nullptr ||
      X509_gmtime_adj(X509_getm_notAfter(cert), 24 * 3600) == nullptr ||
      X509_set_pubkey(cert, out.key.get()) != 1) {
    return Status::Internal(OpenSslError("certificate fields"));
  }
  X509_NAME* name = X509_get_subject_name(cert);
  if (X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                                 reinterpret_cast<const unsigned char*>("Tripline tests"), -1, -1,
                                 0) != 1 ||
      X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                 reinterpret_cast<const unsigned char*>(common_name.c_str()), -1,
                                 -1, 0) != 1) {
    return Status::Internal(OpenSslError("subject"));
  }
  X509* issuer_cert = issuer ? issuer->cert.get() : cert;
  EVP_PKEY* signer = issuer ? issuer->key.get() : out.key.get();
  if (X509_set_issuer_name(cert, X509_get_subject_name(issuer_cert)) != 1) {
    return Status::Internal(OpenSslError("issuer"));
  }
  for (const auto& [nid, value] : extensions) {
    TL_RETURN_IF_ERROR(AddExtension(cert, issuer_cert, nid, value));
  }
  if (X509_sign(cert, signer, EVP_sha256()) == 0) return Status::Internal(OpenSslError("signing"));
  return out;
}

Result<Credential> IssueCa(const std::string& common_name) {
  return Issue(common_name, nullptr,
               {{NID_basic_constraints, "critical,CA:TRUE"},
                {NID_key_usage, "critical,keyCertSign,cRLSign"},
                {NID_subject_key_identifier, "hash"}});
}

Result<Credential> IssueLeaf(const std::string& common_name, const Credential& ca,
                             const std::string& extended_usage, const std::string& san) {
  std::vector<std::pair<int, std::string>> ext = {{NID_basic_constraints, "critical,CA:FALSE"},
                                                  {NID_key_usage, "critical,digitalSignature"},
                                                  {NID_ext_key_usage, extended_usage},
                                                  {NID_authority_key_identifier, "keyid:always"}};
  if (!san.empty()) ext.emplace_back(NID_subject_alt_name, san);
  return Issue(common_name, &ca, ext);
}

namespace {

Status WritePem(const std::string& path, const std::function<int(BIO*)>& write, mode_t mode) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
  if (!bio || write(bio.get()) != 1) return Status::Internal(OpenSslError("PEM for " + path));
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data, size);
  out.close();
  if (!out) return Status::IoError("cannot write " + path);
  if (::chmod(path.c_str(), mode) != 0) return Status::IoError("cannot chmod " + path);
  return Status::Ok();
}

}  // namespace

Status WriteCert(const std::string& path, const Credential& c) {
  return WritePem(
      path, [&](BIO* b) { return PEM_write_bio_X509(b, c.cert.get()); }, 0644);
}

Status WriteKey(const std::string& path, const Credential& c) {
  return WritePem(
      path,
      [&](BIO* b) {
        return PEM_write_bio_PrivateKey(b, c.key.get(), nullptr, nullptr, 0, nullptr, nullptr);
      },
      0600);
}

}  // namespace tripline::testing
