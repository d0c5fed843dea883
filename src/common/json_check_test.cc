// IsJson accepts exactly what boost::json::parse accepts, without building a tree.
#include "common/json_check.h"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

namespace nimbus {
namespace {

TEST(IsJson, AgreesWithTheTreeParserOnEveryKindOfText) {
  const std::string deep_ok = std::string(32, '[') + std::string(32, ']');
  const std::string too_deep = std::string(33, '[') + std::string(33, ']');
  for (std::string text : {std::string("{}"), std::string(" {\"a\": [1, 2.5, -3e9, true, null, \"x\\u00e9\"]} "),
                           std::string("\"just a string\""), std::string("42"), std::string("null"), deep_ok,
                           std::string(""), std::string("{"), std::string("{\"a\":}"), std::string("{} {}"),
                           std::string("[1,]"), std::string("nul"), std::string("'single'"),
                           std::string("\"\xff\""), std::string("{\"a\":1} trailing"), too_deep}) {
    boost::system::error_code ec;
    boost::json::parse(text, ec);
    std::string why;
    EXPECT_EQ(IsJson(text, &why), !ec) << "text: " << text;
    if (ec) {
      EXPECT_FALSE(why.empty()) << text;
    }
  }
}

}  // namespace
}  // namespace nimbus
