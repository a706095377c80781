// A Kubernetes service-account token for tests: a JWT with the claims the kubelet's
// projected tokens carry and a signature of filler bytes (the sensor never checks it).
#pragma once

#include <string>
#include <string_view>

namespace tripline::testing {

inline std::string Base64Url(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(in[i]) << 16) |
                       (static_cast<unsigned char>(in[i + 1]) << 8) |
                       static_cast<unsigned char>(in[i + 2]);
    for (int shift : {18, 12, 6, 0}) out.push_back(kAlphabet[(v >> shift) & 63]);
  }
  if (i < in.size()) {
    unsigned v = static_cast<unsigned char>(in[i]) << 16;
    if (i + 1 < in.size()) v |= static_cast<unsigned char>(in[i + 1]) << 8;
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    if (i + 1 < in.size()) out.push_back(kAlphabet[(v >> 6) & 63]);
  }
  return out;
}

// A token whose claims are `claims` (a JSON object's text).
inline std::string TokenWithClaims(std::string_view claims) {
  return Base64Url(R"({"alg":"RS256","kid":"test"})") + "." + Base64Url(claims) + "." +
         Base64Url("not a real signature");
}

// A token of service account NAMESPACE/NAME as the kubelet mounts it.
inline std::string ServiceAccountToken(const std::string& ns, const std::string& name) {
  return TokenWithClaims(
      R"({"aud":["https://kubernetes.default.svc"],"exp":1893456000,"iss":"https://kubernetes.default.svc",)"
      R"("kubernetes.io":{"namespace":")" +
      ns + R"(","serviceaccount":{"name":")" + name +
      R"(","uid":"0b1c"}},"sub":"system:serviceaccount:)" + ns + ":" + name + "\"}");
}

}  // namespace tripline::testing
