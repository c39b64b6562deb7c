#include "store/sqlite_writer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "testing/testing.h"

namespace conduit {
namespace {

class SqliteWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto conn = SqliteConnection::Open(dir_.path() / "w.db", /*create=*/true, false);
    ASSERT_TRUE(conn.ok()) << conn.status().ToString();
    ASSERT_TRUE((*conn)->Exec("CREATE TABLE t (k INTEGER PRIMARY KEY)").ok());
    writer_.emplace(std::move(*conn), /*max_batch=*/256, /*queue_capacity=*/64);
  }

  static SqliteWriter::WriteFn Insert(int64_t k) {
    return [k](SqliteConnection& c) {
      return c.Exec("INSERT INTO t (k) VALUES (" + std::to_string(k) + ")");
    };
  }

  int64_t Rows() {
    int64_t n = -1;
    EXPECT_TRUE(writer_
                    ->Write("count",
                            [&](SqliteConnection& c) {
                              auto st = c.Prepare("SELECT count(*) FROM t");
                              if (!st.ok()) return st.status();
                              auto row = st->Step();
                              if (!row.ok()) return row.status();
                              if (!*row) return Internal("no row");
                              n = st->Int(0);
                              return Status::Ok();
                            })
                    .ok());
    return n;
  }

  testing::TempDir dir_;
  std::optional<SqliteWriter> writer_;
};

TEST_F(SqliteWriterTest, ALoneWriteCommitsOnTheCallersThread) {
  std::thread::id ran_on;
  Status st = writer_->Write("insert", [&](SqliteConnection& c) {
    ran_on = std::this_thread::get_id();
    return Insert(1)(c);
  });
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(ran_on, std::this_thread::get_id());
  EXPECT_EQ(writer_->commits(), 1);
  EXPECT_EQ(Rows(), 1);
}

TEST_F(SqliteWriterTest, ConcurrentWritesAreEachAnsweredAndShareCommits) {
  constexpr int kThreads = 6;
  constexpr int kPerThread = 150;
  std::atomic<int> failures{0};
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; ++i) {
          // Every fifth write fails (duplicate key) and must fail alone.
          const int64_t k = i % 5 == 4 ? t * 1000 : t * 1000 + i;
          Status st = writer_->Write("insert", Insert(k));
          if (st.ok() == (i % 5 == 4)) ++failures;
        }
      });
    }
  }
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(Rows(), kThreads * (kPerThread - kPerThread / 5));
  EXPECT_EQ(writer_->writes(), kThreads * (kPerThread - kPerThread / 5) + 1);
  EXPECT_LT(writer_->commits(), writer_->writes());
}

TEST_F(SqliteWriterTest, ErrorsNameTheWrite) {
  ASSERT_TRUE(writer_->Write("first", Insert(7)).ok());
  Status st = writer_->Write("second insert", Insert(7));
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("second insert"), std::string::npos) << st.ToString();
}

TEST_F(SqliteWriterTest, ClosingAnswersEveryQueuedWriteAndRefusesNewOnes) {
  std::atomic<int> answered{0};
  std::atomic<bool> slow_started{false};
  std::vector<std::jthread> threads;
  threads.emplace_back([&] {
    Status st = writer_->Write("slow", [&](SqliteConnection& c) {
      slow_started = true;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      return Insert(1)(c);
    });
    EXPECT_TRUE(st.ok()) << st.ToString();
    ++answered;
  });
  while (!slow_started) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      Status st = writer_->Write("queued", Insert(100 + t));
      // Queued before the close: committed. Arrived after it: refused as unavailable.
      EXPECT_TRUE(st.ok() || st.code() == StatusCode::kUnavailable) << st.ToString();
      ++answered;
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  writer_.reset();  // returns only once every queued write has its answer
  threads.clear();
  EXPECT_EQ(answered.load(), 5);
}

}  // namespace
}  // namespace conduit
