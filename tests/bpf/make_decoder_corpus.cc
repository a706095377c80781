// Writes the record decoder's fuzz seed corpus (sensor/fuzz/corpus/record_decoder/): one
// valid record of every type and a few broken ones. Run by hand when the layouts change:
//   make_decoder_corpus sensor/fuzz/corpus/record_decoder
#include <cstdio>
#include <fstream>
#include <string>

#include "tests/bpf/record_builders.h"

namespace t = tripline::sensor::testing;

static void Write(const std::string& dir, const char* name, const std::vector<uint8_t>& b) {
  std::ofstream out(dir + "/" + name, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  Write(dir, "login_pam_failure", t::Bytes(t::LoginRecord()));
  Write(dir, "utmp_btmp", t::Bytes(t::UtmpRecord()));
  Write(dir, "file_open_eacces", t::Bytes(t::FileOpenRecord()));
  Write(dir, "exec_true", t::Bytes(t::ExecRecord()));
  Write(dir, "net_outbound_v6", t::Bytes(t::NetRecord()));

  auto bytes = t::Bytes(t::ExecRecord());
  bytes.resize(200);
  Write(dir, "bad_exec_truncated", bytes);
  auto net = t::NetRecord();
  net.hdr.type = 9;
  Write(dir, "bad_unknown_type", t::Bytes(net));
  auto file = t::FileOpenRecord();
  file.path_len = 255;
  Write(dir, "bad_file_path_len", t::Bytes(file));
  auto exec = t::ExecRecord();
  exec.args_len = 4000;
  Write(dir, "bad_exec_args_len", t::Bytes(exec));
  auto login = t::LoginRecord();
  login.hdr.version = 7;
  Write(dir, "bad_login_version", t::Bytes(login));
  return 0;
}
