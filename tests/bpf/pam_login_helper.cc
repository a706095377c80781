// Test helper: one PAM transaction that fails authentication.
//   pam_login_helper SERVICE USER RHOST PASSWORD
// Calls pam_start(SERVICE, USER), pam_set_item(PAM_RHOST, RHOST), pam_authenticate with a
// conversation that answers PASSWORD, and pam_end. Exits with pam_authenticate's code.
#include <security/pam_appl.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

int Converse(int n, const struct pam_message** msg, struct pam_response** resp, void* data) {
  auto* replies =
      static_cast<pam_response*>(std::calloc(static_cast<size_t>(n), sizeof(pam_response)));
  if (replies == nullptr) return PAM_BUF_ERR;
  for (int i = 0; i < n; ++i) {
    if (msg[i]->msg_style == PAM_PROMPT_ECHO_OFF || msg[i]->msg_style == PAM_PROMPT_ECHO_ON) {
      replies[i].resp = strdup(static_cast<const char*>(data));
    }
  }
  *resp = replies;
  return PAM_SUCCESS;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s SERVICE USER RHOST PASSWORD\n", argv[0]);
    return 100;
  }
  const pam_conv conv = {Converse, argv[4]};
  pam_handle_t* pamh = nullptr;
  int rc = pam_start(argv[1], argv[2], &conv, &pamh);
  if (rc != PAM_SUCCESS) return 101;
  rc = pam_set_item(pamh, PAM_RHOST, argv[3]);
  if (rc != PAM_SUCCESS) return 102;
  rc = pam_authenticate(pamh, 0);
  pam_end(pamh, rc);
  return rc;
}
