// noop-cpp: the benchmark function; answers 200 "ok" and does nothing else.
#include <nimbus/lambda_runtime.hpp>

int main() {
  nimbus::lambda::run([](const std::string&, const nimbus::lambda::Context&) {
    return nimbus::lambda::Response::success(R"({"statusCode":200,"body":"ok"})");
  });
}
