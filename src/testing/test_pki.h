// A throw-away public-key infrastructure for tests of TLS peers: a CA and the certificates it
// signs, written as PEM files into a folder. Keys are EC P-256 and unencrypted. Linked into
// tests only; nothing here is fit for production use.
#pragma once

#include <filesystem>

#include "core/status.h"

namespace conduit::testing {

struct TestPki {
  std::filesystem::path ca_certificate;        // the CA that signed everything below
  std::filesystem::path other_ca_certificate;  // a CA that signed nothing here
  std::filesystem::path server_certificate;    // names 127.0.0.1 and localhost, valid now
  std::filesystem::path server_key;
  std::filesystem::path wrong_name_certificate;  // names only wrong-host.example
  std::filesystem::path wrong_name_key;
  std::filesystem::path expired_server_certificate;  // names 127.0.0.1, ended yesterday
  std::filesystem::path expired_server_key;
  std::filesystem::path client_certificate;  // for mutual TLS (CN conduit-test-client)
  std::filesystem::path client_key;
  std::filesystem::path revoked_client_certificate;  // a second client certificate, revoked by
  std::filesystem::path revoked_client_key;          // `crl`
  std::filesystem::path crl;  // the CA's CRL: the revoked client, next update in 7 days
  std::filesystem::path crl_revoking_client;  // the same, also revoking client_certificate
  std::filesystem::path expired_crl;          // like `crl`, but its next update was yesterday
  std::filesystem::path crl_revoking_server;  // revoking server_certificate
  std::filesystem::path other_client_key;     // a key that matches no certificate here
};

// Creates the CA, certificates and keys under `dir` (which must exist); key files mode 0600.
Result<TestPki> MakeTestPki(const std::filesystem::path& dir);

}  // namespace conduit::testing
