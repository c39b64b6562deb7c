#include "deid/pseudonymiser.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <fstream>
#include <map>
#include <random>
#include <set>

#include "testing/testing.h"

namespace conduit {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kBase32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

using testing::TempDir;

PseudonymKey KeyOf(uint8_t seed) {
  PseudonymKey key;
  for (int i = 0; i < 32; ++i) key.bytes.push_back(static_cast<uint8_t>(seed + 7 * i));
  return key;
}

std::array<uint8_t, 32> Hmac(const PseudonymKey& key, std::string_view domain,
                             std::string_view value) {
  std::string message(domain);
  message.push_back('\0');
  message.append(value);
  std::array<uint8_t, 32> out{};
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.bytes.data(), static_cast<int>(key.bytes.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), out.data(), &length);
  return out;
}

// The first derivation of a UID, written out independently of the implementation.
std::string FirstDerivationUid(const PseudonymKey& key, std::string_view original) {
  std::array<uint8_t, 32> mac = Hmac(key, "uid", original);
  mac[14] = 0xC0;
  mac[15] = 0xDE;
  mac[6] = static_cast<uint8_t>((mac[6] & 0x0F) | 0x80);
  mac[8] = static_cast<uint8_t>((mac[8] & 0x3F) | 0x80);
  unsigned __int128 v = 0;
  for (int i = 0; i < 16; ++i) v = (v << 8) | mac[i];
  std::string digits;
  do {
    digits.insert(digits.begin(), static_cast<char>('0' + static_cast<int>(v % 10)));
    v /= 10;
  } while (v != 0);
  return "2.25." + digits;
}

// The first derivation of a Patient ID: "P" + 15 base32 digits of the MAC read as a
// big-endian number.
std::string FirstDerivationPatientId(const PseudonymKey& key, std::string_view original) {
  std::array<uint8_t, 32> mac = Hmac(key, "patient_id", original);
  std::string body(15, '?');
  for (int i = 14; i >= 0; --i) {
    unsigned rem = 0;
    for (uint8_t& b : mac) {
      unsigned cur = (rem << 8) | b;
      b = static_cast<uint8_t>(cur / 32);
      rem = cur % 32;
    }
    body[static_cast<size_t>(i)] = kBase32[rem];
  }
  return "P" + body;
}

// The 128-bit value of a "2.25." UID.
unsigned __int128 UidValue(const std::string& uid) {
  unsigned __int128 v = 0;
  for (char c : uid.substr(5)) v = v * 10 + static_cast<unsigned>(c - '0');
  return v;
}

void ExpectValidUid(const std::string& uid) {
  ASSERT_EQ(uid.rfind("2.25.", 0), 0u) << uid;
  EXPECT_LE(uid.size(), 44u) << uid;
  EXPECT_LE(uid.size(), 64u) << uid;
  const std::string digits = uid.substr(5);
  ASSERT_FALSE(digits.empty());
  EXPECT_TRUE(digits.size() == 1 || digits[0] != '0') << "no leading zero: " << uid;
  for (char c : digits) ASSERT_TRUE(c >= '0' && c <= '9') << uid;
  ASSERT_LE(digits.size(), 39u) << uid;
  const unsigned __int128 v = UidValue(uid);
  EXPECT_EQ(static_cast<unsigned>((v >> (127 - 51)) & 0xF), 0x8u) << "version 8: " << uid;
  EXPECT_EQ(static_cast<unsigned>((v >> (127 - 65)) & 0x3), 0x2u) << "variant 10: " << uid;
}

void ExpectValidSubstitute(const std::string& s, char prefix) {
  ASSERT_EQ(s.size(), 16u) << s;
  EXPECT_EQ(s[0], prefix) << s;
  for (char c : s.substr(1)) {
    EXPECT_NE(kBase32.find(c), std::string_view::npos) << "outside [A-Z2-7]: " << s;
  }
}

std::string Upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

TEST(PseudonymiserTest, SameKeyAndOriginalGiveTheSameSubstitutes) {
  Pseudonymiser a(KeyOf(1));
  Pseudonymiser b(KeyOf(1));
  EXPECT_EQ(a.Uid("1.2.826.0.1.3680043.2.1125.1"), b.Uid("1.2.826.0.1.3680043.2.1125.1"));
  EXPECT_EQ(a.PatientId("9434765919"), b.PatientId("9434765919"));
  EXPECT_EQ(a.AccessionNumber("RX123456"), b.AccessionNumber("RX123456"));
  EXPECT_EQ(a.PatientName("9434765919"), b.PatientName("9434765919"));
  EXPECT_EQ(a.DateShiftDays("9434765919", 1, 365), b.DateShiftDays("9434765919", 1, 365));
  EXPECT_EQ(a.key_id(), b.key_id());
}

TEST(PseudonymiserTest, DifferentKeysGiveDifferentSubstitutes) {
  Pseudonymiser a(KeyOf(1));
  Pseudonymiser b(KeyOf(2));
  EXPECT_NE(a.Uid("1.2.3.4.5.6"), b.Uid("1.2.3.4.5.6"));
  EXPECT_NE(a.PatientId("9434765919"), b.PatientId("9434765919"));
  EXPECT_NE(a.AccessionNumber("RX123456"), b.AccessionNumber("RX123456"));
  EXPECT_NE(a.key_id(), b.key_id());
}

TEST(PseudonymiserTest, KindsOfIdentifierAreSeparateDomains) {
  Pseudonymiser p(KeyOf(1));
  EXPECT_NE(p.PatientId("12345678").substr(1), p.AccessionNumber("12345678").substr(1));
}

TEST(PseudonymiserTest, UidsAreVersion8UuidsUnder2_25) {
  Pseudonymiser p(KeyOf(3));
  std::mt19937_64 rng(42);
  std::set<std::string> seen;
  for (int i = 0; i < 10000; ++i) {
    const std::string original = "1.2.826.0.1." + std::to_string(rng());
    const std::string uid = p.Uid(original);
    ExpectValidUid(uid);
    seen.insert(uid);
  }
  EXPECT_EQ(seen.size(), 10000u) << "distinct originals give distinct UIDs";
}

TEST(PseudonymiserTest, UidIsTheDocumentedHmacDerivation) {
  const PseudonymKey key = KeyOf(4);
  Pseudonymiser p(key);
  EXPECT_EQ(p.Uid("1.2.840.113619.2.55.3.604688119"),
            FirstDerivationUid(key, "1.2.840.113619.2.55.3.604688119"));
}

TEST(PseudonymiserTest, UidThatWouldContainItsOriginalIsRederived) {
  const PseudonymKey key = KeyOf(5);
  Pseudonymiser p(key);
  // Originals that look like the start of a 2.25 UID collide with the first derivation
  // now and then; find one and check the counter takes over.
  int found = 0;
  for (int n = 1; n < 200000 && found < 3; ++n) {
    const std::string original = "2.25." + std::to_string(n);
    if (FirstDerivationUid(key, original).find(original) == std::string::npos) continue;
    ++found;
    const std::string uid = p.Uid(original);
    EXPECT_EQ(uid.find(original), std::string::npos) << original << " -> " << uid;
    ExpectValidUid(uid);
    EXPECT_EQ(uid, p.Uid(original)) << "the re-derivation is deterministic";
  }
  EXPECT_EQ(found, 3) << "the search found colliding originals";
  EXPECT_EQ(p.Uid("2.25.1").find("2.25.1"), std::string::npos);
}

TEST(PseudonymiserTest, PatientIdAndAccessionNumberFormat) {
  Pseudonymiser p(KeyOf(6));
  ExpectValidSubstitute(p.PatientId("9434765919"), 'P');
  ExpectValidSubstitute(p.AccessionNumber("RX123456"), 'A');
  EXPECT_EQ(p.PatientId(""), "");
  EXPECT_EQ(p.AccessionNumber(""), "");
  EXPECT_EQ(p.PatientName("9434765919"), "PSEUDO^" + p.PatientId("9434765919"));
}

TEST(PseudonymiserTest, PatientIdIsTheDocumentedHmacDerivation) {
  const PseudonymKey key = KeyOf(7);
  Pseudonymiser p(key);
  EXPECT_EQ(p.PatientId("9434765919"), FirstDerivationPatientId(key, "9434765919"));
}

TEST(PseudonymiserTest, PatientIdThatWouldContainItsOriginalIsRederived) {
  const PseudonymKey key = KeyOf(8);
  Pseudonymiser p(key);
  // A 4-character original from the alphabet appears in the first derivation about once in
  // 80,000; enumerate until one does.
  bool found = false;
  std::string original(4, 'A');
  for (int n = 0; n < (1 << 20) && !found; ++n) {
    for (int i = 0, v = n; i < 4; ++i, v /= 32) original[static_cast<size_t>(i)] = kBase32[v % 32];
    if (FirstDerivationPatientId(key, original).find(original) == std::string::npos) continue;
    found = true;
    const std::string id = p.PatientId(original);
    EXPECT_EQ(id.find(original), std::string::npos) << original << " -> " << id;
    ExpectValidSubstitute(id, 'P');
  }
  EXPECT_TRUE(found) << "the search found a colliding original";
}

TEST(PseudonymiserTest, ShortOriginalsNeverShareACharacterWithTheirSubstitute) {
  Pseudonymiser p(KeyOf(9));
  std::vector<std::string> originals;
  for (char c : kBase32) originals.emplace_back(1, c);
  for (char c = 'a'; c <= 'z'; ++c) originals.emplace_back(1, c);
  for (char c = '0'; c <= '9'; ++c) originals.emplace_back(1, c);
  for (const char* s : {"AB", "ZZ", "P2", "A7", "QRS", "abc", "234", "XYZ", "7Q2", "-", "%"}) {
    originals.emplace_back(s);
  }
  for (const std::string& original : originals) {
    for (const auto& [prefix, substitute] :
         {std::pair{'P', p.PatientId(original)}, std::pair{'A', p.AccessionNumber(original)}}) {
      ExpectValidSubstitute(substitute, prefix);
      for (char c : Upper(original)) {
        EXPECT_EQ(substitute.substr(1).find(c), std::string::npos)
            << "'" << original << "' -> " << substitute;
      }
      if (Upper(original) != std::string(1, prefix)) {
        EXPECT_EQ(Upper(substitute).find(Upper(original)), std::string::npos)
            << "'" << original << "' -> " << substitute;
      }
    }
  }
}

TEST(PseudonymiserTest, AnOriginalThatIsThePrefixLetterIsKeptOutOfTheRest) {
  Pseudonymiser p(KeyOf(10));
  EXPECT_EQ(p.PatientId("P").find('P', 1), std::string::npos) << p.PatientId("P");
  EXPECT_EQ(p.AccessionNumber("A").find('A', 1), std::string::npos) << p.AccessionNumber("A");
  EXPECT_EQ(p.AccessionNumber("P").find('P'), std::string::npos);
  EXPECT_EQ(p.PatientId("A").find('A'), std::string::npos);
}

TEST(PseudonymiserTest, PropertyNoSubstituteContainsItsOriginal) {
  Pseudonymiser p(KeyOf(11));
  std::mt19937 rng(7);
  // Originals drawn mostly from the substitutes' own alphabet, so that collisions are
  // possible at all; lengths 1..8.
  const std::string alphabet = std::string(kBase32) + "0189abcxyz";
  std::uniform_int_distribution<size_t> pick(0, alphabet.size() - 1);
  std::uniform_int_distribution<int> length(1, 8);
  for (int i = 0; i < 10000; ++i) {
    std::string original;
    for (int n = length(rng); n > 0; --n) original.push_back(alphabet[pick(rng)]);
    const std::string upper = Upper(original);
    const std::string id = p.PatientId(original);
    const std::string accession = p.AccessionNumber(original);
    ExpectValidSubstitute(id, 'P');
    ExpectValidSubstitute(accession, 'A');
    if (upper != "P") {
      EXPECT_EQ(id.find(upper), std::string::npos) << original << " -> " << id;
    }
    if (upper != "A") {
      EXPECT_EQ(accession.find(upper), std::string::npos) << original << " -> " << accession;
    }
    if (original.size() >= 6) {
      const std::string digits = std::to_string(100000 + rng() % 900000);  // 6 digits
      EXPECT_EQ(p.Uid(digits).find(digits), std::string::npos);
    }
  }
}

TEST(PseudonymiserTest, DateShiftIsUniformInItsRange) {
  Pseudonymiser p(KeyOf(12));
  std::map<int, int> counts;
  for (int i = 0; i < 2000; ++i) {
    const int shift = p.DateShiftDays("patient-" + std::to_string(i), 0, 9);
    ASSERT_GE(shift, 0);
    ASSERT_LE(shift, 9);
    ++counts[shift];
  }
  EXPECT_EQ(counts.size(), 10u) << "every day of the range occurs";
  for (const auto& [shift, n] : counts) {
    EXPECT_GT(n, 100) << "day " << shift << " (expected about 200)";
    EXPECT_LT(n, 300) << "day " << shift << " (expected about 200)";
  }
  EXPECT_EQ(p.DateShiftDays("x", 30, 30), 30);
  EXPECT_EQ(p.DateShiftDays("x", 365, 1), p.DateShiftDays("x", 1, 365)) << "bounds in any order";
  const int wide = p.DateShiftDays("x", INT_MIN, INT_MAX);
  EXPECT_EQ(wide, p.DateShiftDays("x", INT_MIN, INT_MAX));
  EXPECT_EQ(p.DateShiftDays("9434765919", 1, 365), p.DateShiftDays("9434765919", 1, 365));
}

// ---- key files ----

TEST(KeyFileTest, KeygenWritesA32ByteOwnerOnlyFileThatLoads) {
  TempDir tmp;
  const fs::path path = tmp.path() / "conduit.key";
  const mode_t old_mask = ::umask(0);  // the file must be 0600 whatever the umask
  Status written = WriteNewKeyFile(path);
  ::umask(old_mask);
  ASSERT_TRUE(written.ok()) << written.ToString();
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_size, 32);
  auto key = LoadKeyFile(path);
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  EXPECT_EQ(key->bytes.size(), 32u);
  EXPECT_EQ(key->id.size(), 16u);

  const fs::path other = tmp.path() / "other.key";
  ASSERT_TRUE(WriteNewKeyFile(other).ok());
  EXPECT_NE(LoadKeyFile(other)->bytes, key->bytes) << "random bytes each time";
}

TEST(KeyFileTest, KeygenNeverOverwritesAKey) {
  TempDir tmp;
  const fs::path path = tmp.path() / "conduit.key";
  ASSERT_TRUE(WriteNewKeyFile(path).ok());
  const std::vector<uint8_t> before = LoadKeyFile(path)->bytes;
  Status again = WriteNewKeyFile(path);
  EXPECT_EQ(again.code(), StatusCode::kAlreadyExists) << again.ToString();
  EXPECT_NE(again.message().find(path.string()), std::string::npos) << again.message();
  EXPECT_EQ(LoadKeyFile(path)->bytes, before);
}

TEST(KeyFileTest, KeygenIntoAMissingDirectoryFails) {
  TempDir tmp;
  Status written = WriteNewKeyFile(tmp.path() / "no-such-dir" / "conduit.key");
  EXPECT_EQ(written.code(), StatusCode::kNotFound) << written.ToString();
}

TEST(KeyFileTest, AShortKeyIsRefusedWithoutShowingIt) {
  TempDir tmp;
  const fs::path path = tmp.path() / "short.key";
  {
    std::ofstream out(path, std::ios::binary);
    out << std::string(31, 'S');
  }
  auto key = LoadKeyFile(path);
  ASSERT_FALSE(key.ok());
  EXPECT_EQ(key.status().code(), StatusCode::kInvalidArgument);
  const std::string& message = key.status().message();
  EXPECT_NE(message.find("31 bytes"), std::string::npos) << message;
  EXPECT_NE(message.find(path.string()), std::string::npos) << message;
  EXPECT_EQ(message.find("SSSS"), std::string::npos) << "never the content: " << message;

  { std::ofstream out(path, std::ios::binary | std::ios::trunc); }
  EXPECT_EQ(LoadKeyFile(path).status().code(), StatusCode::kInvalidArgument) << "empty file";
}

TEST(KeyFileTest, AnyKeyOf32BytesOrMoreLoadsAsRawBytes) {
  TempDir tmp;
  const fs::path path = tmp.path() / "long.key";
  std::string bytes;
  for (int i = 0; i < 48; ++i) bytes.push_back(static_cast<char>(i == 5 ? 0 : 200 + i % 50));
  {
    std::ofstream out(path, std::ios::binary);
    out << bytes;
  }
  auto key = LoadKeyFile(path);
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  EXPECT_EQ(key->bytes, std::vector<uint8_t>(bytes.begin(), bytes.end()));
}

TEST(KeyFileTest, MissingFileAndDirectoryAreErrors) {
  TempDir tmp;
  EXPECT_EQ(LoadKeyFile(tmp.path() / "absent.key").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(LoadKeyFile(tmp.path()).status().code(), StatusCode::kInvalidArgument);
}

TEST(KeyFileTest, KeyIdIsAHashNotTheKey) {
  TempDir tmp;
  const fs::path path = tmp.path() / "conduit.key";
  ASSERT_TRUE(WriteNewKeyFile(path).ok());
  auto key = LoadKeyFile(path);
  ASSERT_TRUE(key.ok());

  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  ASSERT_EQ(
      EVP_Digest(key->bytes.data(), key->bytes.size(), digest, &length, EVP_sha256(), nullptr), 1);
  std::string sha_hex;
  std::string key_hex;
  char buf[3];
  for (int i = 0; i < 8; ++i) {
    std::snprintf(buf, sizeof buf, "%02x", digest[i]);
    sha_hex += buf;
  }
  for (uint8_t b : key->bytes) {
    std::snprintf(buf, sizeof buf, "%02x", b);
    key_hex += buf;
  }
  EXPECT_EQ(key->id, sha_hex) << "first 16 hex digits of SHA-256 of the key";
  EXPECT_EQ(key_hex.find(key->id), std::string::npos) << "the id does not reveal the key";
  EXPECT_EQ(Pseudonymiser(*key).key_id(), key->id);

  PseudonymKey without_id = KeyOf(1);
  EXPECT_EQ(Pseudonymiser(without_id).key_id().size(), 16u) << "the id is computed if missing";
}

}  // namespace
}  // namespace conduit
