#include "hl7/hl7_message.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>

namespace conduit {
namespace {

constexpr std::string_view kOru =
    "MSH|^~\\&|RIS|TRUST|CONDUIT|TRUST|20240102030405||ORU^R01^ORU_R01|MSG0001|P|2.5.1\r"
    "PID|1||123456^^^NHS^NH~A998^^^TRUST^MR||Smith^John^Q||19700101|M\r"
    "OBR|1|PL1|FI1|CTHEAD^CT Head^LOCAL|||20240102|||||||||||ACC1||||20240102||CT|F\r"
    "OBX|1|TX|REPORT^Report||Line one\\F\\with pipe||||||F\r"
    "OBX|2|TX|REPORT^Report||Line two \\S\\ \\T\\ \\R\\ \\E\\||||||F\r";

Hl7Message MustParse(std::string_view text, const Hl7Limits& limits = {}) {
  Result<Hl7Message> m = Hl7Message::Parse(text, limits);
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  return m.ok() ? std::move(m).value() : Hl7Message();
}

TEST(Hl7MessageTest, ReadsFieldsComponentsRepetitionsAndSegmentRepetitions) {
  const Hl7Message m = MustParse(kOru);
  EXPECT_EQ(m.segments().size(), 5u);
  EXPECT_EQ(m.message_code(), "ORU");
  EXPECT_EQ(m.trigger_event(), "R01");
  EXPECT_EQ(m.control_id(), "MSG0001");
  EXPECT_EQ(m.version(), "2.5.1");
  EXPECT_EQ(m.Value("MSH-1"), "|");
  EXPECT_EQ(m.Value("MSH-2"), "^~\\&");
  EXPECT_EQ(m.Value("MSH-9.3"), "ORU_R01");
  EXPECT_EQ(m.Value("PID-3"), "123456");
  EXPECT_EQ(m.Value("PID-3.4"), "NHS");
  EXPECT_EQ(m.Value("PID-3(2).1"), "A998");
  EXPECT_EQ(m.Value("PID-3(2).5"), "MR");
  EXPECT_EQ(m.Value("PID-5.2"), "John");
  EXPECT_EQ(m.Value("OBR-18"), "ACC1");
  EXPECT_EQ(m.Value("OBR-25"), "F");
  EXPECT_EQ(m.Value("OBX(2)-1"), "2");
  EXPECT_EQ(m.SegmentCount("OBX"), 2u);
  EXPECT_EQ(m.FindSegment("PID")->Repetitions(3), 2u);
}

TEST(Hl7MessageTest, MissingPositionsReadEmpty) {
  const Hl7Message m = MustParse(kOru);
  for (const char* path :
       {"PID-99", "PID-3(3)", "PID-5.9", "PID-5.1.2", "ZZZ-1", "OBX(3)-5", "PV1-2"}) {
    Result<std::string> value = m.Get(path);
    ASSERT_TRUE(value.ok()) << path;
    EXPECT_EQ(*value, "") << path;
  }
}

TEST(Hl7MessageTest, DecodesEscapesOnRead) {
  const Hl7Message m = MustParse(kOru);
  EXPECT_EQ(m.Value("OBX-5"), "Line one|with pipe");
  EXPECT_EQ(m.Value("OBX(2)-5"), "Line two ^ & ~ \\");
}

TEST(Hl7MessageTest, DecodesHexAndKeepsFormattingSequences) {
  const Hl7Message m = MustParse(
      "MSH|^~\\&|A|B|C|D|||ORU^R01|1|P|2.5.1\r"
      "OBX|1|FT|X||a\\X0D0A\\b\\.br\\c\\H\\bold\\N\\ \\Q\\ \\X4\\ end\\\r");
  EXPECT_EQ(m.Value("OBX-5"), "a\r\nb\\.br\\c\\H\\bold\\N\\ \\Q\\ \\X4\\ end\\");
  const std::string again = m.Serialize();
  EXPECT_NE(again.find("a\\X0D\\\\X0A\\b\\.br\\c\\H\\bold\\N\\ \\E\\Q\\E\\ "), std::string::npos)
      << again;
  EXPECT_EQ(MustParse(again).Value("OBX-5"), m.Value("OBX-5"));
}

TEST(Hl7MessageTest, AcceptsCrLfAndLfSegmentEndsAndBlankLines) {
  std::string crlf(kOru), lf(kOru);
  std::string both;
  for (char c : std::string(kOru)) {
    both += c;
    if (c == '\r') both += '\n';
  }
  for (char& c : lf) {
    if (c == '\r') c = '\n';
  }
  const Hl7Message reference = MustParse(kOru);
  EXPECT_EQ(MustParse(both), reference);
  EXPECT_EQ(MustParse(lf), reference);
  EXPECT_EQ(MustParse("\n\n" + both + "\r\n\r\n"), reference);
  EXPECT_EQ(MustParse(lf).Serialize(), std::string(kOru));
}

TEST(Hl7MessageTest, SerializeIsCanonical) {
  const Hl7Message m = MustParse(
      "MSH|^~\\&|A|B|||||ORU^R01|1|P|2.5.1|||||\r"
      "PID|1||X^^^~~||Smith^^^&&||||\r");
  EXPECT_EQ(m.Serialize(),
            "MSH|^~\\&|A|B|||||ORU^R01|1|P|2.5.1\r"
            "PID|1||X||Smith\r");
}

TEST(Hl7MessageTest, OtherSeparatorsRoundTrip) {
  // Field '#', component '$', repetition '*', escape '!', subcomponent '@'.
  const std::string fixed =
      "MSH#$*!@#A#B#C#D###ORU$R01#9#P#2.5.1\r"
      "PID#1##123$$$NHS*456$$$MR##Sm|th$Jo^hn@x\r";
  const Hl7Message m = MustParse(fixed);
  EXPECT_EQ(m.delimiters().field, '#');
  EXPECT_EQ(m.delimiters().component, '$');
  EXPECT_EQ(m.delimiters().repetition, '*');
  EXPECT_EQ(m.delimiters().escape, '!');
  EXPECT_EQ(m.delimiters().subcomponent, '@');
  EXPECT_EQ(m.Value("MSH-9.2"), "R01");
  EXPECT_EQ(m.Value("PID-3(2).4"), "MR");
  EXPECT_EQ(m.Value("PID-5.1"), "Sm|th");
  EXPECT_EQ(m.Value("PID-5.2.1"), "Jo^hn");
  EXPECT_EQ(m.Value("PID-5.2.2"), "x");
  EXPECT_EQ(m.Serialize(), fixed);

  Hl7Message escaped(m.delimiters());
  ASSERT_TRUE(escaped.Set("MSH-3", "a#b$c*d!e@f|g").ok());
  EXPECT_EQ(escaped.Serialize(), "MSH#$*!@#a!F!b!S!c!R!d!E!e!T!f|g\r");
  EXPECT_EQ(MustParse(escaped.Serialize()).Value("MSH-3"), "a#b$c*d!e@f|g");
}

TEST(Hl7MessageTest, TruncationCharacterOfV27IsTolerated) {
  const Hl7Message m =
      MustParse("MSH|^~\\&#|A|B|C|D|||ORU^R01|1|P|2.7\rOBX|1|ST|X||Room #4 \\P\\\r");
  EXPECT_EQ(m.delimiters().truncation, '#');
  EXPECT_EQ(m.Value("MSH-2"), "^~\\&#");
  EXPECT_EQ(m.Value("OBX-5"), "Room #4 #");
  EXPECT_EQ(MustParse(m.Serialize()), m);
}

TEST(Hl7MessageTest, RejectsMalformedTextNamingThePositionOnly) {
  struct Case {
    std::string text;
    StatusCode code;
    std::string message_part;
  };
  const std::vector<Case> cases = {
      {"", StatusCode::kInvalidArgument, "empty message"},
      {"\r\n\r", StatusCode::kInvalidArgument, "empty message"},
      {"PID|1||SECRET\r", StatusCode::kInvalidArgument, "first segment must be MSH"},
      {"MSH|^~\r", StatusCode::kInvalidArgument, "header too short"},
      {"MSH|^~|A|B|C|D|E|F|G\r", StatusCode::kInvalidArgument, "encoding characters"},
      {"MSH|^~\\^|A|B|C\r", StatusCode::kInvalidArgument, "distinct"},
      {"MSH|^~\\&|A\rSECRETNAME|1\r", StatusCode::kInvalidArgument, "segment 2"},
      {"MSH|^~\\&|A\rpid|SECRET\r", StatusCode::kInvalidArgument, "segment 2"},
      {"MSH|^~\\&|A\rMSH|^~\\&|B\r", StatusCode::kInvalidArgument, "batches"},
      {"MSH|^~\\&|A\aB|C\r", StatusCode::kOk, ""},
  };
  for (const Case& c : cases) {
    Result<Hl7Message> m = Hl7Message::Parse(c.text);
    EXPECT_EQ(m.status().code(), c.code) << c.text;
    EXPECT_NE(m.status().message().find(c.message_part), std::string::npos) << m.status().message();
    EXPECT_EQ(m.status().message().find("SECRET"), std::string::npos) << m.status().message();
  }
}

TEST(Hl7MessageTest, LimitsAreEnforcedWithClearErrors) {
  Hl7Limits limits;
  limits.max_message_bytes = 200;
  limits.max_segments = 3;
  limits.max_fields = 10;
  limits.max_repetitions = 2;
  limits.max_components = 3;
  limits.max_subcomponents = 2;
  const std::string msh = "MSH|^~\\&|A|B\r";
  struct Case {
    std::string text;
    std::string message_part;
  };
  const std::vector<Case> cases = {
      {msh + std::string(300, 'x'), "bytes is over the limit of 200"},
      {msh + "PID|1\rPV1|1\rOBX|1\r", "4 segments is over the limit of 3"},
      {msh + "PID|1|2|3|4|5|6|7|8|9|10|11\r", "segment 2 (PID): too many fields (limit 10)"},
      {msh + "PID|1||a~b~c\r", "segment 2 (PID): field 3: too many repetitions (limit 2)"},
      {msh + "PID|1||a^b^c^d\r", "field 3: too many components (limit 3)"},
      {msh + "PID|1||a^b&c&d\r", "field 3: too many subcomponents (limit 2)"},
  };
  for (const Case& c : cases) {
    Result<Hl7Message> m = Hl7Message::Parse(c.text, limits);
    EXPECT_EQ(m.status().code(), StatusCode::kResourceExhausted) << c.text;
    EXPECT_NE(m.status().message().find(c.message_part), std::string::npos) << m.status().message();
  }
  EXPECT_TRUE(Hl7Message::Parse(msh + "PID|1|2|3|4|5|6|7|8|9|10\r", limits).ok());

  Hl7Message built(Hl7Delimiters{}, limits);
  EXPECT_EQ(built.Set("MSH-11", "x").code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(built.Set("MSH-3(3)", "x").code(), StatusCode::kResourceExhausted);
  EXPECT_TRUE(built.Set("MSH-3(2).3.2", "x").ok());
}

TEST(Hl7MessageTest, ParseHeaderReadsOnlyTheMsh) {
  const std::string text =
      "MSH|^~\\&|A|B|C|D|||ADT^A01|CTRL9|P|2.5.1\rPID|1|" + std::string(50, '~') + "\r";
  Hl7Limits limits;
  limits.max_repetitions = 10;
  EXPECT_FALSE(Hl7Message::Parse(text, limits).ok());
  Result<Hl7Message> header = Hl7Message::ParseHeader(text, limits);
  ASSERT_TRUE(header.ok()) << header.status().ToString();
  EXPECT_EQ(header->control_id(), "CTRL9");
  EXPECT_EQ(header->segments().size(), 1u);

  limits.max_segments = 1;
  EXPECT_EQ(Hl7Message::Parse("MSH|^~\\&|A|||||||Z2\rPID|1\r", limits).status().code(),
            StatusCode::kResourceExhausted);
  EXPECT_EQ(Hl7Message::ParseHeader("MSH|^~\\&|A|||||||Z2\rPID|1\r", limits)->control_id(), "Z2")
      << "a message with too many segments can still be answered";
}

TEST(Hl7MessageTest, PathsParseAndRejectMalformedOnes) {
  Result<Hl7Path> p = Hl7Path::Parse("OBX(12)-5(3).2.4");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->segment, "OBX");
  EXPECT_EQ(p->segment_repetition, 12u);
  EXPECT_EQ(p->field, 5u);
  EXPECT_EQ(p->repetition, 3u);
  EXPECT_EQ(p->component, 2u);
  EXPECT_EQ(p->subcomponent, 4u);
  EXPECT_EQ(p->ToString(), "OBX(12)-5(3).2.4");
  EXPECT_EQ(Hl7Path::Parse("PID-3.1")->ToString(), "PID-3");
  EXPECT_EQ(Hl7Path::Parse("PID-3.2")->ToString(), "PID-3.2");
  for (const char* bad : {"", "PID", "PID-", "PID-0", "pid-1", "PID-1.", "PID-1.0", "PID-1.1.1.1",
                          "PID(0)-1", "PID(1-1", "PID-1(2", "PID-1234567", "PID_1", "PID-1x"}) {
    EXPECT_EQ(Hl7Path::Parse(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
  const Hl7Message m = MustParse(kOru);
  EXPECT_EQ(m.Get("PID-0").status().code(), StatusCode::kInvalidArgument);
}

TEST(Hl7MessageTest, SettersBuildMessages) {
  Hl7Message m;
  EXPECT_EQ(m.Set("PID-3", "x").code(), StatusCode::kInvalidArgument) << "MSH must come first";
  ASSERT_TRUE(m.Set("MSH-3", "CONDUIT").ok());
  ASSERT_TRUE(m.Set("MSH-9.1", "ORU").ok());
  ASSERT_TRUE(m.Set("MSH-9.2", "R01").ok());
  ASSERT_TRUE(m.Set("MSH-10", "42").ok());
  ASSERT_TRUE(m.Set("PID-5.1", "O'Brien|Smith").ok());
  ASSERT_TRUE(m.Set("PID-3(2).1", "B").ok());
  ASSERT_TRUE(m.Set("OBX-5", "first").ok());
  ASSERT_TRUE(m.Set("OBX(2)-5", "second").ok());
  EXPECT_EQ(m.Set("OBX(4)-5", "gap").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(m.Set("MSH-1", "#").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(m.Set("MSH(2)-3", "x").code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(m.AddSegment("NTE").ok());
  EXPECT_EQ(m.Serialize(),
            "MSH|^~\\&|CONDUIT||||||ORU^R01|42\r"
            "PID|||~B||O'Brien\\F\\Smith\r"
            "OBX|||||first\r"
            "OBX|||||second\r"
            "NTE\r");
  EXPECT_EQ(MustParse(m.Serialize()), m);
}

// Property: any message built through the setters serializes to text that parses back to the
// same values, and serializing again gives the same text.
TEST(Hl7MessageTest, RandomBuiltMessagesRoundTrip) {
  std::mt19937 rng(20240611);
  const std::string alphabet =
      std::string("ab0 |^~\\&#.-\r\n\t\x01\x0b\x1c\x7f\xc3\xa9") + std::string(1, '\0');
  const std::vector<std::string> names = {"PID", "OBR", "OBX", "ZDS", "NTE", "ORC"};
  const std::vector<Hl7Delimiters> delimiter_sets = {Hl7Delimiters{},
                                                     Hl7Delimiters{'#', '$', '*', '!', '@', '\0'},
                                                     Hl7Delimiters{'|', '^', '~', '\\', '&', '#'}};
  auto pick = [&rng](size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng); };
  for (int iteration = 0; iteration < 300; ++iteration) {
    const Hl7Delimiters& d = delimiter_sets[pick(delimiter_sets.size())];
    Hl7Message m(d);
    std::map<std::string, std::string> expected;  // path -> value, last write wins
    std::map<std::string, size_t> counts;
    ASSERT_TRUE(m.Set("MSH-3", "A").ok());
    expected["MSH-3"] = "A";
    counts["MSH"] = 1;
    const size_t writes = 1 + pick(40);
    for (size_t w = 0; w < writes; ++w) {
      Hl7Path p;
      p.segment = names[pick(names.size())];
      p.segment_repetition = 1 + pick(counts[p.segment] + 1);
      p.field = 1 + pick(12);
      p.repetition = 1 + pick(3);
      p.component = 1 + pick(4);
      p.subcomponent = 1 + pick(3);
      std::string value;
      const size_t length = pick(8);
      for (size_t i = 0; i < length; ++i) value += alphabet[pick(alphabet.size())];
      ASSERT_TRUE(m.Set(p, value).ok()) << p.ToString();
      counts[p.segment] = std::max(counts[p.segment], p.segment_repetition);
      expected[p.ToString()] = value;
    }
    const std::string text = m.Serialize();
    Result<Hl7Message> back = Hl7Message::Parse(text);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    for (const auto& [path, value] : expected) {
      EXPECT_EQ(back->Value(path), value) << path << " in iteration " << iteration;
    }
    EXPECT_EQ(*back, m);
    EXPECT_EQ(back->Serialize(), text);
    EXPECT_EQ(text.find('\n'), std::string::npos);
    EXPECT_EQ(std::count(text.begin(), text.end(), '\r'), static_cast<long>(m.segments().size()));
  }
}

TEST(Hl7MessageTest, EscapeAndUnescapeAreInverse) {
  const Hl7Delimiters d;
  for (std::string value : {"", "plain", "|^~\\&", "\\H\\", "\\\\H\\", "\\X41\\", "\\E\\",
                            "a\rb\nc", "\\.sp2\\x", "\\Cxyzw\\", "\\"}) {
    EXPECT_EQ(Hl7Unescape(Hl7Escape(value, d), d), value) << value;
  }
  EXPECT_EQ(Hl7Unescape("\\X414243\\", d), "ABC");
  EXPECT_EQ(Hl7Unescape("\\X41", d), "\\X41");
  EXPECT_EQ(Hl7Unescape("\\XZZ\\", d), "\\XZZ\\");
}

}  // namespace
}  // namespace conduit
