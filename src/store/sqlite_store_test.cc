// What only the SQLite store promises: persistence across reopen, WAL, a versioned schema,
// and refusing files that are not a store.
#include "store/sqlite_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <fstream>

namespace nimbus::store {
namespace {

namespace fs = std::filesystem;

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char templ[] = "/tmp/nimbus-sqlite-store-test-XXXXXX";
    ASSERT_NE(::mkdtemp(templ), nullptr);
    dir_ = templ;
    db_ = dir_ / "data" / "nimbus.db";
  }
  void TearDown() override { fs::remove_all(dir_); }

  int64_t Pragma(const std::string& name) {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open(db_.c_str(), &db), SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, ("PRAGMA " + name).c_str(), -1, &st, nullptr), SQLITE_OK);
    EXPECT_EQ(sqlite3_step(st), SQLITE_ROW);
    std::string text = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    int64_t value = sqlite3_column_int64(st, 0);
    if (name == "journal_mode") value = text == "wal" ? 1 : 0;
    sqlite3_finalize(st);
    sqlite3_close(db);
    return value;
  }

  fs::path dir_;
  fs::path db_;
};

TEST_F(SqliteStoreTest, EverythingSurvivesClosingAndReopening) {
  {
    auto store = OpenSqliteStore(db_);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    bool created = false;
    ASSERT_TRUE((*store)->Publish("hello", "sha-a", "m1", &created).ok());
    ASSERT_TRUE((*store)->Publish("hello", "sha-b", "m2", &created).ok());
    ASSERT_TRUE((*store)->PutAlias("hello", "live", "1").ok());
  }
  auto store = OpenSqliteStore(db_);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto v = (*store)->GetVersion("hello", "$LATEST");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->version, "2");
  EXPECT_EQ(v->code_sha256, "sha-b");
  EXPECT_EQ(v->manifest_yaml, "m2");
  EXPECT_EQ(*(*store)->ResolveQualifier("hello", "live"), "1");
  bool created = true;
  auto same = (*store)->Publish("hello", "sha-b", "m2", &created);
  ASSERT_TRUE(same.ok());
  EXPECT_FALSE(created);
  EXPECT_EQ((*store)->Publish("hello", "sha-c", "m2", &created)->version, "3");
}

TEST_F(SqliteStoreTest, UsesWalAndRecordsItsSchemaVersion) {
  auto store = OpenSqliteStore(db_);
  ASSERT_TRUE(store.ok());
  EXPECT_EQ(Pragma("journal_mode"), 1);
  EXPECT_EQ(Pragma("user_version"), kStoreSchemaVersion);
  EXPECT_EQ(Pragma("application_id"), static_cast<int64_t>(kStoreApplicationId));
}

TEST_F(SqliteStoreTest, RefusesASchemaFromANewerNimbus) {
  { ASSERT_TRUE(OpenSqliteStore(db_).ok()); }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(db_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version=99", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  auto store = OpenSqliteStore(db_);
  EXPECT_EQ(store.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(store.status().message().find("upgrade nimbus"), std::string::npos);
}

TEST_F(SqliteStoreTest, RefusesAFileThatIsNotAStore) {
  fs::create_directories(db_.parent_path());
  std::ofstream(db_) << "this is not a database, just some text that is long enough......"
                     << std::string(200, 'x');
  auto store = OpenSqliteStore(db_);
  EXPECT_EQ(store.status().code(), Code::kFailedPrecondition) << store.status().ToString();

  fs::remove(db_);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(db_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA application_id=12345; CREATE TABLE t(x)", nullptr, nullptr,
                         nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto other = OpenSqliteStore(db_);
  EXPECT_EQ(other.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(other.status().message().find("is not a nimbus store database"), std::string::npos);
}

TEST_F(SqliteStoreTest, TwoHandlesOnOneFileSeeEachOthersWrites) {
  auto a = OpenSqliteStore(db_);
  auto b = OpenSqliteStore(db_);
  ASSERT_TRUE(a.ok() && b.ok());
  bool created = false;
  ASSERT_TRUE((*a)->Publish("hello", "sha-a", "m1", &created).ok());
  auto v = (*b)->Publish("hello", "sha-b", "m1", &created);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->version, "2");
  EXPECT_EQ((*a)->GetFunction("hello")->latest_version, "2");
}

}  // namespace
}  // namespace nimbus::store
