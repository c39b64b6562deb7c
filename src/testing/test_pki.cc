#include "testing/test_pki.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

namespace conduit::testing {
namespace {

namespace fs = std::filesystem;
using Key = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using Cert = std::unique_ptr<X509, decltype(&X509_free)>;

constexpr long kDay = 24 * 60 * 60;

Key NewKey() { return Key(EVP_EC_gen("P-256"), &EVP_PKEY_free); }

struct Validity {
  long not_before_s;  // from now
  long not_after_s;
};

// A certificate for `key` named `cn`, signed by `issuer` (self-signed when null), with the
// given v3 extensions (name, value pairs in OpenSSL's config syntax).
Cert Issue(EVP_PKEY* key, const std::string& cn, X509* issuer, EVP_PKEY* issuer_key,
           Validity validity, const std::vector<std::pair<int, std::string>>& extensions) {
  static long serial = 1;
  Cert cert(X509_new(), &X509_free);
  if (!cert) return cert;
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial++);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), validity.not_before_s);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), validity.not_after_s);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("Conduit tests"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509* signer = issuer != nullptr ? issuer : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(signer));
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, signer, cert.get(), nullptr, nullptr, 0);
  for (const auto& [nid, value] : extensions) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
    if (ext == nullptr) return Cert(nullptr, &X509_free);
    X509_add_ext(cert.get(), ext, -1);
    X509_EXTENSION_free(ext);
  }
  if (X509_sign(cert.get(), issuer_key != nullptr ? issuer_key : key, EVP_sha256()) == 0) {
    return Cert(nullptr, &X509_free);
  }
  return cert;
}

Status WriteCert(const fs::path& file, X509* cert) {
  FILE* f = std::fopen(file.c_str(), "w");
  if (f == nullptr) return Internal("cannot write " + file.string());
  const bool ok = PEM_write_X509(f, cert) == 1;
  std::fclose(f);
  return ok ? Status::Ok() : Internal("cannot write a certificate to " + file.string());
}

Status WriteKey(const fs::path& file, EVP_PKEY* key) {
  FILE* f = std::fopen(file.c_str(), "w");
  if (f == nullptr) return Internal("cannot write " + file.string());
  ::fchmod(fileno(f), 0600);
  const bool ok = PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr) == 1;
  std::fclose(f);
  return ok ? Status::Ok() : Internal("cannot write a key to " + file.string());
}

// A CRL of `ca` revoking `revoked`, issued a day ago, next update `next_update_s` from now.
Status WriteCrl(const fs::path& file, X509* ca, EVP_PKEY* ca_key, const std::vector<X509*>& revoked,
                long next_update_s) {
  std::unique_ptr<X509_CRL, decltype(&X509_CRL_free)> crl(X509_CRL_new(), &X509_CRL_free);
  if (!crl) return Internal("cannot make a CRL");
  X509_CRL_set_version(crl.get(), 1);
  X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(ca));
  auto set_time = [&](long offset_s, int (*setter)(X509_CRL*, const ASN1_TIME*)) {
    ASN1_TIME* t = X509_gmtime_adj(nullptr, offset_s);
    setter(crl.get(), t);
    ASN1_TIME_free(t);
  };
  set_time(-kDay, X509_CRL_set1_lastUpdate);
  set_time(next_update_s, X509_CRL_set1_nextUpdate);
  for (X509* cert : revoked) {
    X509_REVOKED* entry = X509_REVOKED_new();
    X509_REVOKED_set_serialNumber(entry, X509_get_serialNumber(cert));
    ASN1_TIME* when = X509_gmtime_adj(nullptr, -60);
    X509_REVOKED_set_revocationDate(entry, when);
    ASN1_TIME_free(when);
    X509_CRL_add0_revoked(crl.get(), entry);
  }
  X509_CRL_sort(crl.get());
  if (X509_CRL_sign(crl.get(), ca_key, EVP_sha256()) == 0) return Internal("cannot sign a CRL");
  FILE* f = std::fopen(file.c_str(), "w");
  if (f == nullptr) return Internal("cannot write " + file.string());
  const bool ok = PEM_write_X509_CRL(f, crl.get()) == 1;
  std::fclose(f);
  return ok ? Status::Ok() : Internal("cannot write a CRL to " + file.string());
}

}  // namespace

Result<TestPki> MakeTestPki(const fs::path& dir) {
  const Validity now{-kDay, 30 * kDay};
  const std::vector<std::pair<int, std::string>> ca_ext = {
      {NID_basic_constraints, "critical,CA:TRUE"},
      {NID_key_usage, "critical,keyCertSign,cRLSign"},
      {NID_subject_key_identifier, "hash"}};
  const auto server_ext = [](const std::string& names) {
    return std::vector<std::pair<int, std::string>>{{NID_basic_constraints, "critical,CA:FALSE"},
                                                    {NID_key_usage, "critical,digitalSignature"},
                                                    {NID_ext_key_usage, "serverAuth"},
                                                    {NID_subject_alt_name, names},
                                                    {NID_authority_key_identifier, "keyid"}};
  };

  Key ca_key = NewKey();
  Key other_ca_key = NewKey();
  if (!ca_key || !other_ca_key) return Internal("cannot make EC keys");
  Cert ca = Issue(ca_key.get(), "Conduit test CA", nullptr, nullptr, now, ca_ext);
  Cert other_ca = Issue(other_ca_key.get(), "Another test CA", nullptr, nullptr, now, ca_ext);
  if (!ca || !other_ca) return Internal("cannot make the test CAs");

  TestPki pki;
  pki.ca_certificate = dir / "ca.pem";
  pki.other_ca_certificate = dir / "other-ca.pem";
  RETURN_IF_ERROR(WriteCert(pki.ca_certificate, ca.get()));
  RETURN_IF_ERROR(WriteCert(pki.other_ca_certificate, other_ca.get()));

  struct Leaf {
    fs::path* cert_file;
    fs::path* key_file;
    std::string name;
    Validity validity;
    std::vector<std::pair<int, std::string>> extensions;
  };
  const std::vector<std::pair<int, std::string>> client_ext = {
      {NID_basic_constraints, "critical,CA:FALSE"},
      {NID_key_usage, "critical,digitalSignature"},
      {NID_ext_key_usage, "clientAuth"},
      {NID_authority_key_identifier, "keyid"}};
  const std::vector<Leaf> leaves = {
      {&pki.server_certificate, &pki.server_key, "server", now,
       server_ext("IP:127.0.0.1,DNS:localhost")},
      {&pki.wrong_name_certificate, &pki.wrong_name_key, "wrong-name", now,
       server_ext("DNS:wrong-host.example")},
      {&pki.expired_server_certificate, &pki.expired_server_key, "expired",
       Validity{-3 * kDay, -kDay}, server_ext("IP:127.0.0.1,DNS:localhost")},
      {&pki.client_certificate, &pki.client_key, "client", now, client_ext},
      {&pki.revoked_client_certificate, &pki.revoked_client_key, "revoked-client", now, client_ext},
  };
  std::vector<Cert> issued;  // server, ..., client, revoked-client: for the CRLs
  for (const Leaf& leaf : leaves) {
    Key key = NewKey();
    if (!key) return Internal("cannot make an EC key");
    const std::string cn =
        leaf.name == "client" ? "conduit-test-client" : "conduit-test-" + leaf.name;
    Cert cert = Issue(key.get(), cn, ca.get(), ca_key.get(), leaf.validity, leaf.extensions);
    if (!cert) return Internal("cannot issue the " + leaf.name + " certificate");
    *leaf.cert_file = dir / (leaf.name + ".pem");
    *leaf.key_file = dir / (leaf.name + ".key");
    RETURN_IF_ERROR(WriteCert(*leaf.cert_file, cert.get()));
    RETURN_IF_ERROR(WriteKey(*leaf.key_file, key.get()));
    issued.push_back(std::move(cert));
  }
  pki.crl = dir / "crl.pem";
  pki.crl_revoking_client = dir / "crl-revoking-client.pem";
  pki.expired_crl = dir / "expired-crl.pem";
  X509* server = issued[0].get();  // the order of `leaves`
  X509* client = issued[3].get();
  X509* revoked_client = issued[4].get();
  pki.crl_revoking_server = dir / "crl-revoking-server.pem";
  RETURN_IF_ERROR(WriteCrl(pki.crl, ca.get(), ca_key.get(), {revoked_client}, 7 * kDay));
  RETURN_IF_ERROR(WriteCrl(pki.crl_revoking_client, ca.get(), ca_key.get(),
                           {client, revoked_client}, 7 * kDay));
  RETURN_IF_ERROR(WriteCrl(pki.expired_crl, ca.get(), ca_key.get(), {revoked_client}, -kDay));
  RETURN_IF_ERROR(WriteCrl(pki.crl_revoking_server, ca.get(), ca_key.get(), {server}, 7 * kDay));
  Key other = NewKey();
  if (!other) return Internal("cannot make an EC key");
  pki.other_client_key = dir / "other-client.key";
  RETURN_IF_ERROR(WriteKey(pki.other_client_key, other.get()));
  return pki;
}

}  // namespace conduit::testing
