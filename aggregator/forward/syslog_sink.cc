// syslog+tcp:// and syslog+tls://: RFC 5424 messages with a CEF body, framed by octet
// counting (RFC 6587), over one long-lived connection (TLS per RFC 5425 for syslog+tls,
// with the server's certificate verified against the configured CA and its name or IP).
//
// Syslog over TCP has no acknowledgement: a write that returns has reached the local
// kernel, not the receiver. Before each run the connection is checked for a close or reset
// by the receiver (a receiver that stopped), and a run is counted delivered only when all
// of it was written; a receiver that dies without closing may still lose what was in
// flight. docs/forwarding.md says so; RELP or the HTTP outputs acknowledge each record.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "aggregator/forward/incident_formats.h"
#include "aggregator/forward/sink.h"
#include "common/clock.h"

namespace tripline::forward {
namespace {

std::string OpenSslError(std::string_view what) {
  std::string out(what);
  const unsigned long e = ERR_get_error();
  if (e != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    out += ": ";
    out += buf;
  }
  ERR_clear_error();
  return out;
}

bool IsIpAddress(const std::string& host) {
  in6_addr a6;
  in_addr a4;
  return inet_pton(AF_INET, host.c_str(), &a4) == 1 || inet_pton(AF_INET6, host.c_str(), &a6) == 1;
}

// A TCP connection to host:port made within timeout_ns, blocking afterwards with send and
// receive timeouts of timeout_ns.
Result<int> ConnectTcp(const HostPort& address, int64_t timeout_ns) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_family = AF_UNSPEC;
  addrinfo* res = nullptr;
  const std::string port = std::to_string(address.port);
  const int rc = getaddrinfo(address.host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0) {
    return Status::Unavailable("resolving " + address.host + ": " + gai_strerror(rc));
  }
  Status last = Status::Unavailable("no address for " + address.host);
  const int timeout_ms = static_cast<int>(timeout_ns / kNanosPerMilli);
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    const int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
      last = Status::FromErrno(errno, "socket");
      continue;
    }
    int r = ::connect(fd, ai->ai_addr, ai->ai_addrlen);
    if (r != 0 && errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      r = ::poll(&p, 1, timeout_ms);
      if (r == 0) {
        ::close(fd);
        last = Status::DeadlineExceeded("connecting to " + address.ToString() + " timed out");
        continue;
      }
      int err = 0;
      socklen_t len = sizeof(err);
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (r < 0 || err != 0) {
        ::close(fd);
        last = Status::FromErrno(r < 0 ? errno : err, "connecting to " + address.ToString());
        continue;
      }
    } else if (r != 0) {
      last = Status::FromErrno(errno, "connecting to " + address.ToString());
      ::close(fd);
      continue;
    }
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    timeval tv{static_cast<time_t>(timeout_ns / kNanosPerSecond),
               static_cast<suseconds_t>((timeout_ns % kNanosPerSecond) / 1000)};
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    freeaddrinfo(res);
    return fd;
  }
  freeaddrinfo(res);
  return last;
}

class SyslogSink final : public Sink {
 public:
  SyslogSink(const ForwardTarget& target, const SinkOptions& options, SSL_CTX* ctx)
      : address_(target.address), options_(options), ctx_(ctx) {}
  ~SyslogSink() override {
    Reset();
    if (ctx_ != nullptr) SSL_CTX_free(ctx_);
  }

  SendOutcome Send(const std::vector<ForwardRecord>& records) override {
    SendOutcome out;
    if (fd_ >= 0 && PeerClosed()) Reset();
    if (fd_ < 0) {
      if (Status s = Connect(); !s.ok()) {
        Reset();
        out.error = s;
        return out;
      }
    }
    std::string bytes;
    for (const ForwardRecord& r : records) {
      bytes += FrameOctetCounting(std::visit(
          [&](const auto& record) { return FormatSyslog(record, options_.hostname); }, r));
    }
    if (Status s = WriteAll(bytes); !s.ok()) {
      Reset();
      out.error = s;
      return out;
    }
    out.delivered = records.size();
    return out;
  }

  void Reset() override {
    if (ssl_ != nullptr) {
      SSL_free(ssl_);
      ssl_ = nullptr;
    }
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  Status Connect() {
    TL_ASSIGN_OR_RETURN(fd_, ConnectTcp(address_, options_.timeout_ns));
    if (ctx_ == nullptr) return Status::Ok();
    ssl_ = SSL_new(ctx_);
    if (ssl_ == nullptr) return Status::Internal(OpenSslError("SSL_new"));
    if (IsIpAddress(address_.host)) {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), address_.host.c_str());
    } else {
      SSL_set_tlsext_host_name(ssl_, address_.host.c_str());
      SSL_set1_host(ssl_, address_.host.c_str());
    }
    SSL_set_fd(ssl_, fd_);
    if (SSL_connect(ssl_) != 1) {
      const long verify = SSL_get_verify_result(ssl_);
      std::string why = OpenSslError("TLS handshake with " + address_.ToString());
      if (verify != X509_V_OK) {
        why += std::string(" (certificate: ") + X509_verify_cert_error_string(verify) + ")";
      }
      return Status::Unavailable(why);
    }
    return Status::Ok();
  }

  // A receiver that stopped or restarted closed or reset the connection: the next write
  // would vanish into it. (Only the close counts: a TLS server may send session tickets
  // after the handshake, which is data, not a close.)
  bool PeerClosed() const {
    pollfd p{fd_, POLLRDHUP, 0};
    return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
  }

  Status WriteAll(const std::string& bytes) {
    size_t done = 0;
    while (done < bytes.size()) {
      if (ssl_ != nullptr) {
        size_t n = 0;
        if (SSL_write_ex(ssl_, bytes.data() + done, bytes.size() - done, &n) != 1) {
          return Status::Unavailable(OpenSslError("TLS write to " + address_.ToString()));
        }
        done += n;
        continue;
      }
      const ssize_t n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return Status::FromErrno(errno, "writing to " + address_.ToString());
      done += static_cast<size_t>(n);
    }
    return Status::Ok();
  }

  const HostPort address_;
  const SinkOptions options_;
  SSL_CTX* const ctx_;  // owned; nullptr for plain TCP
  SSL* ssl_ = nullptr;
  int fd_ = -1;
};

}  // namespace

Result<std::unique_ptr<Sink>> MakeSyslogSink(const ForwardTarget& target,
                                             const SinkOptions& options) {
  SSL_CTX* ctx = nullptr;
  if (target.kind == ForwardTarget::Kind::kSyslogTls) {
    ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == nullptr) return Status::Internal(OpenSslError("SSL_CTX_new"));
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    SSL_CTX_set_mode(ctx, SSL_MODE_AUTO_RETRY);
    const int loaded = options.ca_file.empty()
                           ? SSL_CTX_set_default_verify_paths(ctx)
                           : SSL_CTX_load_verify_locations(ctx, options.ca_file.c_str(), nullptr);
    if (loaded != 1) {
      SSL_CTX_free(ctx);
      return Status::InvalidArgument(OpenSslError("cannot load CA file '" + options.ca_file + "'"));
    }
  }
  return std::unique_ptr<Sink>(new SyslogSink(target, options, ctx));
}

}  // namespace tripline::forward
