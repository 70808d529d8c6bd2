#include "estlab/core/properties.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace estlab {
namespace {

// "Contains" with the whole message in the failure output (gmock is not linked).
::testing::AssertionResult Contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "'" << text << "' does not contain '" << part << "'";
}

Properties parse_ok(std::string_view text, std::string source = "est.properties") {
  auto result = Properties::parse(text, std::move(source));
  if (!result) {
    ADD_FAILURE() << "parse failed: " << result.error().message;
    return Properties{};
  }
  return std::move(result).value();
}

std::string value_of(const Properties& p, std::string_view key) {
  auto v = p.get_string(key);
  if (!v) {
    ADD_FAILURE() << "missing key '" << key << "'";
    return {};
  }
  return *v;
}

// ---------------------------------------------------------------------------------------------- syntax

TEST(PropertiesSyntax, SeparatorsAreEqualsColonOrWhitespace) {
  const auto p = parse_ok("a=1\nb:2\nc 3\nd\t4\ne\f5\n");
  EXPECT_EQ(p.keys(), (std::vector<std::string>{"a", "b", "c", "d", "e"}));
  EXPECT_EQ(value_of(p, "a"), "1");
  EXPECT_EQ(value_of(p, "b"), "2");
  EXPECT_EQ(value_of(p, "c"), "3");
  EXPECT_EQ(value_of(p, "d"), "4");
  EXPECT_EQ(value_of(p, "e"), "5");
}

TEST(PropertiesSyntax, WhitespaceAroundSeparatorIsIgnoredButOnlyOneSeparatorIsEaten) {
  const auto p = parse_ok("a = 1\n  b  :  2\nc   3\ne =  = x\nf : :y\ng  =\nh\nk = v  \n");
  EXPECT_EQ(value_of(p, "a"), "1");
  EXPECT_EQ(value_of(p, "b"), "2");
  EXPECT_EQ(value_of(p, "c"), "3");
  EXPECT_EQ(value_of(p, "e"), "= x");
  EXPECT_EQ(value_of(p, "f"), ":y");
  EXPECT_EQ(value_of(p, "g"), "");
  EXPECT_EQ(value_of(p, "h"), "");
  EXPECT_EQ(value_of(p, "k"), "v  ");  // trailing whitespace is kept, as in Java
}

TEST(PropertiesSyntax, WhitespaceSeparatorThenEqualsIsOneSeparator) {
  const auto p = parse_ok("key   =value\nother  value with = inside\n");
  EXPECT_EQ(value_of(p, "key"), "value");
  EXPECT_EQ(value_of(p, "other"), "value with = inside");
}

TEST(PropertiesSyntax, CommentsStartWithHashOrBangAfterLeadingWhitespace) {
  const auto p = parse_ok("# comment\n  ! another\n\t#x=1\n\n   \na=1 # not a comment\n!b=2\n");
  EXPECT_EQ(p.keys(), std::vector<std::string>{"a"});
  EXPECT_EQ(value_of(p, "a"), "1 # not a comment");
  EXPECT_FALSE(p.contains("x"));
  EXPECT_FALSE(p.contains("#x"));
}

TEST(PropertiesSyntax, LineEndingsLfCrLfAndCrAllCountAsLines) {
  const auto p = parse_ok("a=1\r\nb=2\rc=3\n\nd=4");
  EXPECT_EQ(value_of(p, "a"), "1");
  EXPECT_EQ(value_of(p, "b"), "2");
  EXPECT_EQ(value_of(p, "c"), "3");
  EXPECT_EQ(p.line_of("a"), 1);
  EXPECT_EQ(p.line_of("b"), 2);
  EXPECT_EQ(p.line_of("c"), 3);
  EXPECT_EQ(p.line_of("d"), 5);
}

TEST(PropertiesSyntax, ContinuationJoinsLinesAndDropsLeadingWhitespace) {
  const auto p = parse_ok("a=one \\\n    two\\\n\t three\nb=2\n");
  EXPECT_EQ(value_of(p, "a"), "one twothree");
  EXPECT_EQ(p.line_of("a"), 1);
  EXPECT_EQ(p.line_of("b"), 4);
}

TEST(PropertiesSyntax, EvenBackslashesDoNotContinue) {
  const auto p = parse_ok("a=x\\\\\nb=2\nc=y\\\\\\\n  z\n");
  EXPECT_EQ(value_of(p, "a"), "x\\");
  EXPECT_EQ(value_of(p, "b"), "2");
  EXPECT_EQ(value_of(p, "c"), "y\\z");
}

TEST(PropertiesSyntax, CommentLinesAreNeverContinued) {
  const auto p = parse_ok("# comment ends with \\\na=1\n");
  EXPECT_EQ(p.keys(), std::vector<std::string>{"a"});
  EXPECT_EQ(p.line_of("a"), 2);
}

TEST(PropertiesSyntax, ContinuedLineThatLooksLikeACommentIsValue) {
  const auto p = parse_ok("a=1\\\n  # not a comment\n");
  EXPECT_EQ(value_of(p, "a"), "1# not a comment");
}

TEST(PropertiesSyntax, ContinuationInsideKeyAndAtEndOfText) {
  const auto p = parse_ok("ke\\\n  y=v\nlast=1\\");
  EXPECT_EQ(value_of(p, "key"), "v");
  EXPECT_EQ(value_of(p, "last"), "1");
}

TEST(PropertiesSyntax, EmptyContinuationLineEndsTheLogicalLine) {
  const auto p = parse_ok("a=1\\\n\nb=2\n");
  EXPECT_EQ(value_of(p, "a"), "1");
  EXPECT_EQ(value_of(p, "b"), "2");
  EXPECT_EQ(p.line_of("b"), 3);
}

TEST(PropertiesSyntax, KeyOnlyAndEmptyKey) {
  const auto p = parse_ok("lonely\n=value\n");
  EXPECT_EQ(value_of(p, "lonely"), "");
  EXPECT_EQ(value_of(p, ""), "value");
}

TEST(PropertiesSyntax, Utf8BytesPassThroughAndByteOrderMarkIsDropped) {
  const auto p = parse_ok("\xEF\xBB\xBFname=Gr\xC3\xBC\xC3\x9F" "e\n");
  EXPECT_EQ(p.keys(), std::vector<std::string>{"name"});
  EXPECT_EQ(value_of(p, "name"), "Gr\xC3\xBC\xC3\x9F" "e");
}

TEST(PropertiesSyntax, DuplicateKeyLastWinsAndIsReported) {
  const auto p = parse_ok("a=1\nb=2\na=3\n");
  EXPECT_EQ(value_of(p, "a"), "3");
  EXPECT_EQ(p.line_of("a"), 3);
  EXPECT_EQ(p.keys(), (std::vector<std::string>{"a", "b"}));
  ASSERT_EQ(p.warnings().size(), 1U);
  EXPECT_TRUE(Contains(p.warnings()[0], "est.properties:3: duplicate key 'a'"));
  EXPECT_TRUE(Contains(p.warnings()[0], "line 1"));
}

TEST(PropertiesSyntax, NoWarningsForACleanFile) {
  const auto p = parse_ok("a=1\nb=2\n");
  EXPECT_TRUE(p.warnings().empty());
}

// --------------------------------------------------------------------------------------------- escapes

TEST(PropertiesEscapes, SingleCharacterEscapes) {
  const auto p = parse_ok("a=\\t\\n\\r\\f\\\\\\=\\:\\#\\!\\ x\n");
  EXPECT_EQ(value_of(p, "a"), "\t\n\r\f\\=:#! x");
}

TEST(PropertiesEscapes, EscapedSeparatorsBelongToTheKey) {
  const auto p = parse_ok("my\\ key\\=x\\:y=v\n\\#not\\!comment=1\n");
  EXPECT_EQ(value_of(p, "my key=x:y"), "v");
  EXPECT_EQ(value_of(p, "#not!comment"), "1");
}

TEST(PropertiesEscapes, EscapedLeadingSpaceOfValueIsKept) {
  const auto p = parse_ok("a=\\  x\n");
  EXPECT_EQ(value_of(p, "a"), "  x");
}

TEST(PropertiesEscapes, UnknownEscapeDropsTheBackslashAsJavaDoes) {
  const auto p = parse_ok("a=\\q\\b\n");
  EXPECT_EQ(value_of(p, "a"), "qb");
}

TEST(PropertiesEscapes, UnicodeEscapesBecomeUtf8) {
  const auto p = parse_ok("a=\\u0041\\u00e9\\u20AC\n\\u006By=v\n");
  EXPECT_EQ(value_of(p, "a"), "A\xC3\xA9\xE2\x82\xAC");
  EXPECT_EQ(value_of(p, "ky"), "v");
}

TEST(PropertiesEscapes, SurrogatePairBecomesOneCodePoint) {
  const auto p = parse_ok("a=\\uD83D\\uDE00\n");
  EXPECT_EQ(value_of(p, "a"), "\xF0\x9F\x98\x80");
}

TEST(PropertiesEscapes, EscapedBackslashBeforeUIsNotAUnicodeEscape) {
  const auto p = parse_ok("a=\\\\u12G4\n");
  EXPECT_EQ(value_of(p, "a"), "\\u12G4");
}

TEST(PropertiesEscapes, MalformedUnicodeEscapeNamesFileAndLine) {
  auto r = Properties::parse("a=1\nb=2\nc=\\u12G4\n", "est.properties");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::invalid_input);
  EXPECT_TRUE(Contains(r.error().message, "est.properties:3: malformed \\uXXXX escape"));
  EXPECT_TRUE(Contains(r.error().message, "\\u12G4"));
}

TEST(PropertiesEscapes, TruncatedUnicodeEscapeIsAnError) {
  auto r = Properties::parse("a=\\u12", "coap.properties");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(Contains(r.error().message, "coap.properties:1: malformed \\uXXXX escape"));
}

TEST(PropertiesEscapes, MalformedEscapeInKeyIsAnError) {
  auto r = Properties::parse("\n\\uXYZW=1", "est.properties");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(Contains(r.error().message, "est.properties:2: malformed \\uXXXX escape"));
}

TEST(PropertiesEscapes, ErrorOnContinuedLineNamesThatLine) {
  auto r = Properties::parse("a=x\\\n   y\\\n   \\uZZZZ\n", "est.properties");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(Contains(r.error().message, "est.properties:3: malformed \\uXXXX escape"));
}

TEST(PropertiesEscapes, UnpairedSurrogatesAreErrors) {
  for (const char* text : {"a=\\uD83D", "a=\\uD83Dx", "a=\\uDE00", "a=\\uD83D\\u0041"}) {
    auto r = Properties::parse(text, "est.properties");
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_TRUE(Contains(r.error().message, "est.properties:1:")) << text;
    EXPECT_TRUE(Contains(r.error().message, "surrogate")) << text;
  }
}

// ------------------------------------------------------------------------------------------- accessors

constexpr const char* kAccessorText =
    "# est.properties used by the accessor tests\n"  // 1
    "enroll.enabled=TRUE\n"                          // 2
    "enroll.disabled = false\n"                      // 3
    "enroll.padded=true  \n"                         // 4
    "http.port=8443\n"                               // 5
    "\n"                                             // 6
    "enroll.mandatorypassword=yes please\n"          // 7
    "big=70000\n"                                    // 8
    "word=12abc\n"                                   // 9
    "empty=\n"                                       // 10
    "plus=+7\n"                                      // 11
    "neg=-5\n"                                       // 12
    "huge=99999999999999999999\n"                    // 13
    "plusminus=+-5\n";                               // 14

TEST(PropertiesAccessors, GetBoolAcceptsTrueAndFalseInAnyCase) {
  const auto p = parse_ok(kAccessorText);
  EXPECT_EQ(p.get_bool("enroll.enabled").value(), true);
  EXPECT_EQ(p.get_bool("enroll.disabled").value(), false);
  EXPECT_EQ(p.get_bool("enroll.padded").value(), true);
}

TEST(PropertiesAccessors, GetBoolErrorNamesFileLineKeyAndValue) {
  const auto p = parse_ok(kAccessorText);
  auto r = p.get_bool("enroll.mandatorypassword");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::invalid_input);
  EXPECT_EQ(r.error().message,
            "est.properties:7: enroll.mandatorypassword: expected true or false, got 'yes please'");
  // A fallback only covers a missing key, never a bad value.
  EXPECT_FALSE(p.get_bool("enroll.mandatorypassword", true).ok());
  EXPECT_FALSE(p.get_bool("empty").ok());
  EXPECT_FALSE(p.get_bool("http.port").ok());
}

TEST(PropertiesAccessors, MissingKeyIsNotFoundUnlessThereIsAFallback) {
  const auto p = parse_ok(kAccessorText);
  auto r = p.get_bool("no.such.key");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::not_found);
  EXPECT_TRUE(Contains(r.error().message, "est.properties"));
  EXPECT_TRUE(Contains(r.error().message, "no.such.key"));
  EXPECT_EQ(p.get_bool("no.such.key", true).value(), true);
  EXPECT_EQ(p.get_int("no.such.key", 0, 10, 3).value(), 3);
  EXPECT_EQ(p.get_duration_seconds("no.such.key", std::chrono::seconds(9)).value(), std::chrono::seconds(9));
  EXPECT_EQ(p.get_int("no.such.key", 0, 10).error().code, ErrorCode::not_found);
  EXPECT_EQ(p.get_duration_seconds("no.such.key").error().code, ErrorCode::not_found);
}

TEST(PropertiesAccessors, GetIntParsesWithinRange) {
  const auto p = parse_ok(kAccessorText);
  EXPECT_EQ(p.get_int("http.port", 1, 65535).value(), 8443);
  EXPECT_EQ(p.get_int("plus", 0, 10).value(), 7);
  EXPECT_EQ(p.get_int("neg", -10, 10).value(), -5);
  EXPECT_EQ(p.get_int("http.port", 1, 65535, 80).value(), 8443);
}

TEST(PropertiesAccessors, GetIntOutOfRangeNamesFileLineKeyAndRange) {
  const auto p = parse_ok(kAccessorText);
  auto r = p.get_int("big", 1, 65535);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::invalid_input);
  EXPECT_TRUE(Contains(r.error().message, "est.properties:8: big: "));
  EXPECT_TRUE(Contains(r.error().message, "1 to 65535"));
  EXPECT_TRUE(Contains(r.error().message, "got '70000'"));
  EXPECT_FALSE(p.get_int("neg", 0, 10).ok());
}

TEST(PropertiesAccessors, GetIntRejectsNonNumbers) {
  const auto p = parse_ok(kAccessorText);
  auto word = p.get_int("word", 0, 1000);
  ASSERT_FALSE(word.ok());
  EXPECT_TRUE(Contains(word.error().message, "est.properties:9: word: "));
  EXPECT_TRUE(Contains(word.error().message, "'12abc'"));
  EXPECT_FALSE(p.get_int("empty", 0, 10).ok());
  EXPECT_FALSE(p.get_int("huge", INT64_MIN, INT64_MAX).ok());
  EXPECT_FALSE(p.get_int("plusminus", -10, 10).ok());
  EXPECT_FALSE(p.get_int("enroll.enabled", 0, 10).ok());
}

TEST(PropertiesAccessors, GetDurationAcceptsSecondsAndSuffixes) {
  const auto p = parse_ok("a=30\nb=30s\nc=5m\nd=2h\ne=1D\nf= 10M \ng=0\n");
  using std::chrono::seconds;
  EXPECT_EQ(p.get_duration_seconds("a").value(), seconds(30));
  EXPECT_EQ(p.get_duration_seconds("b").value(), seconds(30));
  EXPECT_EQ(p.get_duration_seconds("c").value(), seconds(300));
  EXPECT_EQ(p.get_duration_seconds("d").value(), seconds(7200));
  EXPECT_EQ(p.get_duration_seconds("e").value(), seconds(86400));
  EXPECT_EQ(p.get_duration_seconds("f").value(), seconds(600));
  EXPECT_EQ(p.get_duration_seconds("g").value(), seconds(0));
}

TEST(PropertiesAccessors, GetDurationErrorsNameFileLineAndKey) {
  const auto p = parse_ok("ok=1\nf=5 minutes\ng=-5\nh=m\ni=5x\nj=5 m\nk=999999999999999999d\nl=\nm=1.5h\n");
  int line = 2;
  for (const char* key : {"f", "g", "h", "i", "j", "k", "l", "m"}) {
    auto r = p.get_duration_seconds(key);
    ASSERT_FALSE(r.ok()) << key;
    EXPECT_EQ(r.error().code, ErrorCode::invalid_input) << key;
    EXPECT_TRUE(Contains(r.error().message, "est.properties:" + std::to_string(line) + ": " + key + ": "));
    EXPECT_TRUE(Contains(r.error().message, "s, m, h or d"));
    ++line;
  }
}

TEST(PropertiesAccessors, GetListSplitsAndTrims) {
  const auto p = parse_ok("l= a , b,c \nempty=\none=x\n");
  EXPECT_EQ(p.get_list("l").value(), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(p.get_list("one").value(), std::vector<std::string>{"x"});
  EXPECT_TRUE(p.get_list("empty").value().empty());
  EXPECT_TRUE(p.get_list("missing").value().empty());
}

TEST(PropertiesAccessors, GetListRejectsEmptyItems) {
  const auto p = parse_ok("ok=a\nbad=a,,b\ntrail=a,\n");
  auto bad = p.get_list("bad");
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(Contains(bad.error().message, "est.properties:2: bad: "));
  EXPECT_TRUE(Contains(bad.error().message, "item 2 is empty"));
  auto trail = p.get_list("trail");
  ASSERT_FALSE(trail.ok());
  EXPECT_TRUE(Contains(trail.error().message, "est.properties:3: trail: "));
}

TEST(PropertiesAccessors, GetStringKeysContainsLineOf) {
  const auto p = parse_ok("x=1\n\ny = two words \n");
  EXPECT_EQ(p.get_string("x"), std::optional<std::string>("1"));
  EXPECT_EQ(p.get_string("y"), std::optional<std::string>("two words "));
  EXPECT_EQ(p.get_string("z"), std::nullopt);
  EXPECT_EQ(p.get_string("z", "dflt"), "dflt");
  EXPECT_EQ(p.get_string("x", "dflt"), "1");
  EXPECT_TRUE(p.contains("x"));
  EXPECT_FALSE(p.contains("z"));
  EXPECT_EQ(p.line_of("y"), 3);
  EXPECT_EQ(p.line_of("z"), std::nullopt);
  EXPECT_EQ(p.size(), 2U);
}

TEST(PropertiesAccessors, KeysWithPrefixKeepsFileOrder) {
  const auto p = parse_ok("handler.2.filter=b\nother=1\nhandlers.x=2\nhandler.1.filter=a\nhandler.1.idm=z\n");
  EXPECT_EQ(p.keys_with_prefix("handler."),
            (std::vector<std::string>{"handler.2.filter", "handler.1.filter", "handler.1.idm"}));
  EXPECT_TRUE(p.keys_with_prefix("nothing.").empty());
}

TEST(PropertiesAccessors, ErrorsWithoutALineStillNameTheKey) {
  Properties p("generated");
  p.set("flag", "maybe");
  auto r = p.get_bool("flag");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "generated: flag: expected true or false, got 'maybe'");
  EXPECT_EQ(p.line_of("flag"), 0);
}

// ---------------------------------------------------------------------------------------- unknown keys

const std::vector<std::string> kKnown = {
    "enroll.mandatorypassword",
    "http.port",
    "handler.<n>.filter",
    "handler.<n>.idm.tls.token",
};

TEST(PropertiesUnknownKeys, KnownKeysAndNumberedPatternsGiveNoWarnings) {
  const auto p = parse_ok(
      "enroll.mandatorypassword=true\nhttp.port=1\nhandler.1.filter=x\nhandler.12.idm.tls.token=t\n"
      "handler.007.filter=y\n");
  EXPECT_TRUE(p.warnings_for_unknown(kKnown).empty());
}

TEST(PropertiesUnknownKeys, TypoIsReportedWithFileLineAndSuggestion) {
  const auto p = parse_ok("http.port=1\n\n\nenrol.mandatorypassword=false\n");
  const auto warnings = p.warnings_for_unknown(kKnown);
  ASSERT_EQ(warnings.size(), 1U);
  EXPECT_EQ(warnings[0],
            "est.properties:4: unknown key 'enrol.mandatorypassword' (did you mean 'enroll.mandatorypassword'?)");
}

TEST(PropertiesUnknownKeys, TransposedLettersAreCloseToo) {
  const auto p = parse_ok("enroll.mandatroypassword=false\n");
  const auto warnings = p.warnings_for_unknown(kKnown);
  ASSERT_EQ(warnings.size(), 1U);
  EXPECT_TRUE(Contains(warnings[0], "did you mean 'enroll.mandatorypassword'?"));
}

TEST(PropertiesUnknownKeys, ShortKeysOnlyGetOneEditButATranspositionIsOne) {
  const auto p = parse_ok("prot=1\nprts=2\n");
  const auto warnings = p.warnings_for_unknown({"port"});
  ASSERT_EQ(warnings.size(), 2U);
  EXPECT_EQ(warnings[0], "est.properties:1: unknown key 'prot' (did you mean 'port'?)");
  EXPECT_EQ(warnings[1], "est.properties:2: unknown key 'prts'");  // two edits away: too far for 4 letters
}

TEST(PropertiesUnknownKeys, PatternTypoSuggestsTheKeyWithItsOwnNumber) {
  const auto p = parse_ok("handler.3.idm.tls.tokn=z\n");
  const auto warnings = p.warnings_for_unknown(kKnown);
  ASSERT_EQ(warnings.size(), 1U);
  EXPECT_TRUE(Contains(warnings[0], "est.properties:1: unknown key 'handler.3.idm.tls.tokn'"));
  EXPECT_TRUE(Contains(warnings[0], "did you mean 'handler.3.idm.tls.token'?"));
}

TEST(PropertiesUnknownKeys, PlaceholderMatchesOnlyDecimalNumbers) {
  const auto p = parse_ok(
      "handler.x.filter=1\nhandler..filter=2\nhandler.1a.filter=3\nhandler.1.filter.extra=4\nhandler.-1.filter=5\n");
  const auto warnings = p.warnings_for_unknown(kKnown);
  ASSERT_EQ(warnings.size(), 5U);
  EXPECT_TRUE(Contains(warnings[0], "est.properties:1: unknown key 'handler.x.filter'"));
  EXPECT_TRUE(Contains(warnings[1], "est.properties:2: unknown key 'handler..filter'"));
  EXPECT_TRUE(Contains(warnings[2], "est.properties:3: unknown key 'handler.1a.filter'"));
  EXPECT_TRUE(Contains(warnings[3], "est.properties:4: unknown key 'handler.1.filter.extra'"));
  EXPECT_TRUE(Contains(warnings[4], "est.properties:5: unknown key 'handler.-1.filter'"));
}

TEST(PropertiesUnknownKeys, PlaceholderFollowedByADigitBacktracks) {
  const auto p = parse_ok("v121.x=1\nv1.y.2=2\n");
  EXPECT_TRUE(p.warnings_for_unknown({"v<n>1.x", "v<n>.y.<n>"}).empty());
}

TEST(PropertiesUnknownKeys, UnrelatedKeyGetsNoSuggestion) {
  const auto p = parse_ok("completely.unrelated=1\nport=2\n");
  const auto warnings = p.warnings_for_unknown(kKnown);
  ASSERT_EQ(warnings.size(), 2U);
  EXPECT_EQ(warnings[0], "est.properties:1: unknown key 'completely.unrelated'");
  EXPECT_EQ(warnings[1], "est.properties:2: unknown key 'port'");
}

// ------------------------------------------------------------------------------------------ round trip

TEST(PropertiesRoundTrip, WriterOutputIsPlainForPlainEntries) {
  Properties p;
  p.set("a", "1");
  p.set("b.c", "two words");
  p.set("a", "3");  // replacing keeps the first position and warns about nothing
  EXPECT_EQ(p.to_string(), "a=3\nb.c=two words\n");
  EXPECT_TRUE(p.warnings().empty());
}

TEST(PropertiesRoundTrip, EscapesSeparatorsCommentsAndSpaces) {
  Properties p;
  p.set("my key", " lead");
  p.set("#hash", "a=b:c");
  EXPECT_EQ(p.to_string(), "my\\ key=\\ lead\n\\#hash=a\\=b\\:c\n");
}

TEST(PropertiesRoundTrip, ParseOfToStringGivesTheSameEntries) {
  const std::vector<std::pair<std::string, std::string>> entries = {
      {"\xEF\xBB\xBF" "bom.key", "first key starts with a byte-order mark"},
      {" leading space key", "  leading spaces"},
      {"key with = and : and # and !", "value with = and : and # and !"},
      {"#comment-like", "!bang-like"},
      {"!bang", "#hash"},
      {"tab\tkey", "tab\tvalue\t"},
      {"", "empty key"},
      {"empty.value", ""},
      {"back\\slash", "ends with backslash\\"},
      {"odd.backslashes", "\\\\\\"},
      {"multi.line", "line one\nline two\r\nline three\rend"},
      {"form.feed", "\f"},
      {"control", std::string("\x01\x7f\x00z", 4)},
      {"unicode.\xE2\x82\xAC", "Gr\xC3\xBC\xC3\x9F" "e \xF0\x9F\x98\x80"},
      {"literal.escape", "\\u0041 stays literal"},
      {"trailing", "spaces  "},
      {"  ", "   "},
  };
  Properties p("written");
  for (const auto& [k, v] : entries) p.set(k, v);
  const std::string text = p.to_string();
  auto back = Properties::parse(text, "written");
  ASSERT_TRUE(back.ok()) << back.error().message << "\n" << text;
  ASSERT_EQ(back->size(), entries.size()) << text;
  std::vector<std::string> expected_keys;
  for (const auto& [k, v] : entries) {
    expected_keys.push_back(k);
    EXPECT_EQ(back->get_string(k), std::optional<std::string>(v)) << "key '" << k << "' in\n" << text;
  }
  EXPECT_EQ(back->keys(), expected_keys);
  EXPECT_TRUE(back->warnings().empty());
}

TEST(PropertiesRoundTrip, ParsedFileSurvivesRewrite) {
  const auto p = parse_ok(
      "# header\nenroll.mandatorypassword = true\nlist=a, b,\\\n  c\nname=\\u00e9\\uD83D\\uDE00\n"
      "path=C:\\\\est\\\\ca\nspaced\\ key : v\n");
  auto back = Properties::parse(p.to_string(), "est.properties");
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->keys(), p.keys());
  for (const auto& key : p.keys()) EXPECT_EQ(back->get_string(key), p.get_string(key)) << key;
  EXPECT_EQ(value_of(*back, "path"), "C:\\est\\ca");
}

// ------------------------------------------------------------------------------------------------ files

class PropertiesFile : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("estlab_properties_" + std::string(info->name()) + "_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::filesystem::path write(const std::string& name, const std::string& content) {
    const auto path = dir_ / name;
    std::ofstream(path, std::ios::binary) << content;
    return path;
  }
  std::filesystem::path dir_;
};

TEST_F(PropertiesFile, LoadsAndNamesTheFileInMessages) {
  const auto path = write("est.properties", "a=1\nflag=maybe\n");
  auto p = Properties::load_file(path);
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->source_name(), path.string());
  EXPECT_EQ(value_of(*p, "a"), "1");
  auto flag = p->get_bool("flag");
  ASSERT_FALSE(flag.ok());
  EXPECT_TRUE(Contains(flag.error().message, path.string() + ":2: flag: "));
}

TEST_F(PropertiesFile, SyntaxErrorNamesTheFile) {
  const auto path = write("coap.properties", "ok=1\nbad=\\u00\n");
  auto p = Properties::load_file(path);
  ASSERT_FALSE(p.ok());
  EXPECT_TRUE(Contains(p.error().message, path.string() + ":2: malformed \\uXXXX escape"));
}

TEST_F(PropertiesFile, MissingFileIsAnIoErrorNamingTheFile) {
  const auto path = dir_ / "absent.properties";
  auto p = Properties::load_file(path);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().code, ErrorCode::io);
  EXPECT_TRUE(Contains(p.error().message, path.string()));
}

TEST_F(PropertiesFile, SizeLimitIsEnforced) {
  const auto path = write("est.properties", std::string(99, '#') + "\n");  // 100 bytes
  EXPECT_TRUE(Properties::load_file(path, 100).ok());
  auto over = Properties::load_file(path, 99);
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error().code, ErrorCode::limit_exceeded);
  EXPECT_TRUE(Contains(over.error().message, path.string()));
  EXPECT_TRUE(Contains(over.error().message, "99"));
}

TEST_F(PropertiesFile, DefaultLimitIsOneMebibyte) {
  EXPECT_EQ(Properties::kDefaultMaxFileBytes, 1024U * 1024U);
  const std::string line = std::string(1023, '#') + "\n";
  std::string content;
  for (int i = 0; i < 1024; ++i) content += line;
  EXPECT_TRUE(Properties::load_file(write("exact.properties", content)).ok());
  auto over = Properties::load_file(write("over.properties", content + "a=1\n"));
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error().code, ErrorCode::limit_exceeded);
}

}  // namespace
}  // namespace estlab
