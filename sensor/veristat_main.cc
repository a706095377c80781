// tripline-veristat: what the running kernel's verifier makes of every Tripline BPF program.
//
// Loads each program of each hook family's variants on its own, as the sensor would configure
// it, and prints the instructions the verifier processed against Tripline's budget (a quarter
// of the verifier's 1,000,000), like bpftool's veristat. Variants this kernel cannot run
// (a missing function or kfunc, trampolines refused) are listed with the reason.
//
//   tripline-veristat [--scope host|uts] [--json] [--log PROGRAM]
//
// --log PROGRAM prints that program's whole verifier log first.
//
// Exit codes: 0 when every program this kernel could run loaded within the budget, 1 when one
// was refused or is over it, 2 for bad arguments. Needs root (or CAP_BPF and CAP_PERFMON).
#include <bpf/libbpf.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include "sensor/bpf_probe.h"

namespace tripline::sensor {
namespace {

int Quiet(enum libbpf_print_level, const char*, va_list) { return 0; }

int Usage() {
  std::fputs("usage: tripline-veristat [--scope host|uts] [--json] [--log PROGRAM]\n", stderr);
  return 2;
}

// A JSON string literal: quotes, backslashes and control characters escaped.
std::string JsonString(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned char>(c));
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

int Run(int argc, char** argv) {
  bool json = false;
  bool uts = false;
  std::string log_program;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--json") {
      json = true;
    } else if (a == "--log" && i + 1 < argc) {
      log_program = argv[++i];
    } else if (a == "--scope" && i + 1 < argc) {
      std::string_view v = argv[++i];
      if (v != "host" && v != "uts") return Usage();
      uts = v == "uts";
    } else {
      return Usage();
    }
  }
  libbpf_set_print(Quiet);
  ProbeOptions options;
  options.sensitive_paths = DefaultSensitivePaths();
  if (uts) {
    // The UTS filter is code only when a namespace is set: load with this one's inode.
    struct stat st {};
    if (stat("/proc/self/ns/uts", &st) != 0) {
      std::perror("stat /proc/self/ns/uts");
      return 1;
    }
    options.target_uts_inum = static_cast<uint32_t>(st.st_ino);
  }
  Result<std::vector<ProgramVerification>> r = MeasureVerification(options, log_program);
  if (!r.ok()) {
    std::fprintf(stderr, "tripline-veristat: %s\n", r.status().ToString().c_str());
    return 1;
  }
  for (const ProgramVerification& p : *r) {
    if (p.program == log_program) {
      std::printf("---- verifier log of %s (%s, %s) ----\n%s\n", p.program.c_str(),
                  p.family.c_str(), p.variant.c_str(), p.log.c_str());
    }
  }
  utsname u{};
  uname(&u);
  bool ok = true;
  for (const ProgramVerification& p : *r) {
    const bool attempted = p.loaded || p.error.rfind("not loaded:", 0) != 0;
    if (attempted && (!p.loaded || p.insns > kVerifierBudget)) ok = false;
  }
  if (json) {
    std::printf("{\"kernel\":%s,\"budget\":%llu,\"limit\":%llu,\"scope\":\"%s\",\"programs\":[",
                JsonString(u.release).c_str(), static_cast<unsigned long long>(kVerifierBudget),
                static_cast<unsigned long long>(kVerifierLimit), uts ? "uts" : "host");
    for (size_t i = 0; i < r->size(); ++i) {
      const ProgramVerification& p = (*r)[i];
      std::printf(
          "%s{\"family\":%s,\"variant\":%s,\"program\":%s,\"loaded\":%s,\"insns\":%llu,"
          "\"load_ms\":%.1f,\"error\":%s}",
          i ? "," : "", JsonString(p.family).c_str(), JsonString(p.variant).c_str(),
          JsonString(p.program).c_str(), p.loaded ? "true" : "false",
          static_cast<unsigned long long>(p.insns), p.load_ms, JsonString(p.error).c_str());
    }
    std::printf("],\"ok\":%s}\n", ok ? "true" : "false");
    return ok ? 0 : 1;
  }
  std::printf("kernel %s, scope %s; budget %llu of the verifier's %llu instructions\n\n", u.release,
              uts ? "uts" : "host", static_cast<unsigned long long>(kVerifierBudget),
              static_cast<unsigned long long>(kVerifierLimit));
  std::printf("%-11s %-33s %-29s %9s %7s %8s  %s\n", "family", "variant", "program", "insns",
              "budget", "load ms", "result");
  for (const ProgramVerification& p : *r) {
    std::string result = p.loaded ? (p.insns > kVerifierBudget ? "OVER BUDGET" : "ok") : p.error;
    if (p.loaded || p.insns > 0) {
      std::printf("%-11s %-33s %-29s %9llu %6.1f%% %8.1f  %s\n", p.family.c_str(),
                  p.variant.c_str(), p.program.c_str(), static_cast<unsigned long long>(p.insns),
                  100.0 * static_cast<double>(p.insns) / static_cast<double>(kVerifierBudget),
                  p.load_ms, result.c_str());
    } else {
      std::printf("%-11s %-33s %-29s %9s %7s %8s  %s\n", p.family.c_str(), p.variant.c_str(),
                  p.program.c_str(), "-", "-", "-", result.c_str());
    }
  }
  std::printf("\n%s\n", ok ? "every program this kernel can run is within the budget"
                           : "SOME PROGRAM WAS REFUSED OR IS OVER THE BUDGET");
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace tripline::sensor

int main(int argc, char** argv) { return tripline::sensor::Run(argc, argv); }
