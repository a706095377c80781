// A small HTTP/1.1 server on 127.0.0.1:0 for the forwarding tests and benchmark: requests
// with Content-Length bodies, answered by a handler, connections served one after the
// other with keep-alive. It stands in for collectors that cannot run here (Splunk HEC,
// Elasticsearch); each test says what it checks of their protocol.
#pragma once

#include <netinet/in.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <functional>
#include <map>
#include <string>
#include <thread>

namespace tripline::testing {

struct HttpRequest {
  std::string method, path;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
};
struct HttpResponse {
  int status = 200;
  std::string body;
};

// One HTTP/1.1 server on 127.0.0.1:0, connections served one after the other, keep-alive.
class TestHttpServer {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;
  // With `tls` (not owned; must outlive the server) connections are TLS: HTTPS.
  explicit TestHttpServer(Handler handler, SSL_CTX* tls = nullptr)
      : handler_(std::move(handler)), tls_(tls) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    ::listen(fd_, 8);
    socklen_t len = sizeof(a);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~TestHttpServer() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  int port() const { return port_; }

 private:
  bool WaitReadable(int fd) {
    while (!stop_) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 50) > 0) return true;
    }
    return false;
  }
  void Serve() {
    while (WaitReadable(fd_)) {
      const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      timeval tv{5, 0};
      ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
      ssl_ = nullptr;
      if (tls_ != nullptr) {
        ssl_ = SSL_new(tls_);
        SSL_set_fd(ssl_, c);
        if (SSL_accept(ssl_) != 1) {
          SSL_free(ssl_);
          ssl_ = nullptr;
          ::close(c);
          continue;
        }
      }
      std::string buffer;
      while (true) {
        HttpRequest req;
        if (!ReadRequest(c, &buffer, &req)) break;
        const HttpResponse resp = handler_(req);
        const std::string out = "HTTP/1.1 " + std::to_string(resp.status) +
                                " X\r\nContent-Type: application/json\r\nContent-Length: " +
                                std::to_string(resp.body.size()) + "\r\n\r\n" + resp.body;
        const ssize_t sent = ssl_ != nullptr
                                 ? SSL_write(ssl_, out.data(), static_cast<int>(out.size()))
                                 : ::send(c, out.data(), out.size(), MSG_NOSIGNAL);
        if (sent != static_cast<ssize_t>(out.size())) break;
      }
      if (ssl_ != nullptr) SSL_free(ssl_);
      ssl_ = nullptr;
      ::close(c);
    }
  }
  bool ReadMore(int c, std::string* buffer) {
    if ((ssl_ == nullptr || SSL_pending(ssl_) == 0) && !WaitReadable(c)) return false;
    char chunk[65536];
    const ssize_t n =
        ssl_ != nullptr ? SSL_read(ssl_, chunk, sizeof(chunk)) : ::recv(c, chunk, sizeof(chunk), 0);
    if (n <= 0) return false;
    buffer->append(chunk, static_cast<size_t>(n));
    return true;
  }
  bool ReadRequest(int c, std::string* buffer, HttpRequest* req) {
    size_t end;
    while ((end = buffer->find("\r\n\r\n")) == std::string::npos) {
      if (!ReadMore(c, buffer)) return false;
    }
    const std::string head = buffer->substr(0, end);
    buffer->erase(0, end + 4);
    size_t line_end = head.find("\r\n");
    const std::string request_line = head.substr(0, line_end);
    const size_t sp1 = request_line.find(' '), sp2 = request_line.rfind(' ');
    req->method = request_line.substr(0, sp1);
    req->path = request_line.substr(sp1 + 1, sp2 - sp1 - 1);
    while (line_end != std::string::npos) {
      const size_t next = head.find("\r\n", line_end + 2);
      const std::string line = head.substr(line_end + 2, next - line_end - 2);
      const size_t colon = line.find(':');
      std::string name = line.substr(0, colon);
      for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      req->headers[name] = line.substr(line.find_first_not_of(' ', colon + 1));
      line_end = next;
    }
    const size_t length =
        std::stoul(req->headers.count("content-length") != 0 ? req->headers["content-length"]
                                                             : std::string("0"));
    while (buffer->size() < length) {
      if (!ReadMore(c, buffer)) return false;
    }
    req->body = buffer->substr(0, length);
    buffer->erase(0, length);
    return true;
  }

  Handler handler_;
  SSL_CTX* const tls_;
  SSL* ssl_ = nullptr;  // of the connection being served
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace tripline::testing
