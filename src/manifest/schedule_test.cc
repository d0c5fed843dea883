// Schedule expressions: which rate() and cron() forms are accepted, and what each refusal says.
#include "manifest/schedule.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace nimbus::manifest {
namespace {

using ::testing::HasSubstr;

std::string ErrorOf(std::string_view expr) {
  Status st = CheckScheduleExpression(expr);
  EXPECT_FALSE(st.ok()) << expr << " was accepted";
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  return st.message();
}

TEST(Schedule, RatesWithAPluralUnitAreAccepted) {
  for (const char* e : {"rate(5 minutes)", "rate(2 hours)", "rate(7 days)", "rate(100 minutes)"}) {
    EXPECT_TRUE(CheckScheduleExpression(e).ok()) << e;
  }
}

TEST(Schedule, RatesOfOneTakeTheSingularUnit) {
  for (const char* e : {"rate(1 minute)", "rate(1 hour)", "rate(1 day)"}) {
    EXPECT_TRUE(CheckScheduleExpression(e).ok()) << e;
  }
  EXPECT_EQ(ErrorOf("rate(1 minutes)"), "use the singular unit for 1: rate(1 minute)");
}

TEST(Schedule, RatesAboveOneTakeThePluralUnit) {
  EXPECT_EQ(ErrorOf("rate(5 hour)"), "use the plural unit for 5: rate(5 hours)");
}

TEST(Schedule, ARateOfZeroIsRefused) {
  EXPECT_THAT(ErrorOf("rate(0 minutes)"), HasSubstr("whole number of at least 1"));
}

TEST(Schedule, ARateMustBeWhole) {
  EXPECT_THAT(ErrorOf("rate(1.5 hours)"), HasSubstr("'1.5' must be a whole number"));
  EXPECT_THAT(ErrorOf("rate(-5 minutes)"), HasSubstr("'-5' must be a whole number"));
}

TEST(Schedule, AnOffsetFromTheLastDayIsRefusedWithWhatIsAllowed) {
  EXPECT_EQ(ErrorOf("cron(0 12 L-3 * ? *)"),
            "day-of-month 'L-3' is not supported; use L (the last day), LW (the last weekday) or 15W (the "
            "weekday nearest the 15th)");
}

TEST(Schedule, SecondsAndWeeksAreNotRateUnits) {
  EXPECT_THAT(ErrorOf("rate(30 seconds)"), HasSubstr("'seconds' is not supported; use minute(s), hour(s) or day(s)"));
  EXPECT_THAT(ErrorOf("rate(2 weeks)"), HasSubstr("'weeks' is not supported"));
}

TEST(Schedule, ARateNeedsExactlyAValueAndAUnit) {
  EXPECT_THAT(ErrorOf("rate(5)"), HasSubstr("needs a value and a unit"));
  EXPECT_THAT(ErrorOf("rate(5 minutes please)"), HasSubstr("needs a value and a unit"));
}

TEST(Schedule, NeitherRateNorCronIsRefusedWithExamples) {
  EXPECT_EQ(ErrorOf("every 5 minutes"),
            "must be rate(VALUE UNIT) or cron(6 FIELDS), e.g. rate(5 minutes) or cron(0 12 * * ? *)");
  EXPECT_THAT(ErrorOf("Rate(5 minutes)"), HasSubstr("must be rate(VALUE UNIT)"));
  EXPECT_THAT(ErrorOf("rate(5 minutes"), HasSubstr("must be rate(VALUE UNIT)"));
  EXPECT_THAT(ErrorOf(""), HasSubstr("must be rate(VALUE UNIT)"));
}

TEST(Schedule, AwsDocumentationCronExamplesAreAccepted) {
  for (const char* e : {"cron(0 12 * * ? *)", "cron(15 10 ? * 6L 2019-2022)",
                        "cron(0 18 ? * MON-FRI *)", "cron(0 8 1 * ? *)", "cron(0/15 * * * ? *)",
                        "cron(0/10 * ? * MON-FRI *)", "cron(0/5 8-17 ? * MON-FRI *)",
                        "cron(0 9 ? * 2#1 *)", "cron(0 10 L * ? *)", "cron(0 10 15W * ? *)",
                        "cron(0 10 LW * ? *)", "cron(5,35 14 * * ? *)", "cron(0 0 ? JAN,jul SUN *)",
                        "cron(*/5 * * * ? *)", "cron(0 0 ? * L *)"}) {
    EXPECT_TRUE(CheckScheduleExpression(e).ok()) << e << ": " << CheckScheduleExpression(e).message();
  }
}

TEST(Schedule, CronNeedsSixFields) {
  EXPECT_THAT(ErrorOf("cron(0 12 * ? * * *)"), HasSubstr("needs 6 fields"));
}

TEST(Schedule, AUnixCrontabGetsAHintAboutTheYearAndQuestionMark) {
  EXPECT_THAT(ErrorOf("cron(0 12 * * *)"), HasSubstr("a 5-field Unix crontab needs a year field"));
}

TEST(Schedule, CronDayOfMonthAndDayOfWeekCannotBothBeSet) {
  EXPECT_THAT(ErrorOf("cron(0 12 * * * *)"), HasSubstr("cannot both be set; put '?' in one of them"));
}

TEST(Schedule, CronDayOfMonthAndDayOfWeekCannotBothBeQuestionMarks) {
  EXPECT_THAT(ErrorOf("cron(0 12 ? * ? *)"), HasSubstr("cannot both be '?'"));
}

TEST(Schedule, CronQuestionMarkOnlyInTheDayFields) {
  EXPECT_THAT(ErrorOf("cron(? 12 * * ? *)"), HasSubstr("'?' is only allowed in day-of-month and day-of-week, not in minutes"));
}

TEST(Schedule, CronQuestionMarkMustStandAlone) {
  EXPECT_THAT(ErrorOf("cron(0 12 ?,1 * ? *)"), HasSubstr("'?' must stand alone in day-of-month"));
}

TEST(Schedule, CronValuesOutOfRangeNameTheField) {
  EXPECT_EQ(ErrorOf("cron(60 12 * * ? *)"), "minutes value '60' is out of range; use 0-59");
  EXPECT_THAT(ErrorOf("cron(0 24 * * ? *)"), HasSubstr("hours value '24' is out of range; use 0-23"));
  EXPECT_THAT(ErrorOf("cron(0 12 0 * ? *)"), HasSubstr("day-of-month value '0'"));
  EXPECT_THAT(ErrorOf("cron(0 12 * 13 ? *)"), HasSubstr("month value '13' is out of range; use 1-12 or JAN-DEC"));
  EXPECT_THAT(ErrorOf("cron(0 12 ? * 8 *)"), HasSubstr("day-of-week value '8' is out of range; use 1-7 or SUN-SAT"));
  EXPECT_THAT(ErrorOf("cron(0 12 * * ? 1969)"), HasSubstr("year value '1969'"));
  EXPECT_THAT(ErrorOf("cron(0 12 * * ? 2200)"), HasSubstr("year value '2200'"));
}

TEST(Schedule, CronNamesAreOnlyForMonthAndDayOfWeek) {
  EXPECT_THAT(ErrorOf("cron(0 12 MON * ? *)"), HasSubstr("day-of-month value 'MON'"));
  EXPECT_THAT(ErrorOf("cron(0 12 ? FRI ? *)"), HasSubstr("month value 'FRI'"));
}

TEST(Schedule, CronRangesMustRunForwards) {
  EXPECT_THAT(ErrorOf("cron(0 17-9 * * ? *)"), HasSubstr("hours range '17-9' runs backwards"));
}

TEST(Schedule, CronStepsMustBeInRange) {
  EXPECT_THAT(ErrorOf("cron(*/0 * * * ? *)"), HasSubstr("minutes step in '*/0' must be a whole number between 1 and 59"));
  EXPECT_THAT(ErrorOf("cron(*/x * * * ? *)"), HasSubstr("step"));
}

TEST(Schedule, CronLAndWOnlyWhereAwsAllowsThem) {
  EXPECT_THAT(ErrorOf("cron(L 12 * * ? *)"), HasSubstr("minutes value 'L'"));
  EXPECT_THAT(ErrorOf("cron(0 12 ? * 3W *)"), HasSubstr("day-of-week value '3W'"));
  EXPECT_THAT(ErrorOf("cron(0 12 32W * ? *)"), HasSubstr("day-of-month value '32'"));
}

TEST(Schedule, CronNthWeekdayIsOneToFive) {
  EXPECT_THAT(ErrorOf("cron(0 12 ? * 3#6 *)"), HasSubstr("week number 1-5 after '#'"));
  EXPECT_THAT(ErrorOf("cron(0 12 1#2 * ? *)"), HasSubstr("day-of-month"));
}

TEST(Schedule, CronEmptyListItemsAreRefused) {
  EXPECT_THAT(ErrorOf("cron(0, 12 * * ? *)"), HasSubstr("minutes has an empty list item"));
  EXPECT_THAT(ErrorOf("cron(0,,5 12 * * ? *)"), HasSubstr("minutes has an empty list item"));
}

}  // namespace
}  // namespace nimbus::manifest
