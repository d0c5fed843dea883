// The annotated mutex behaves as the std::mutex under it: a MutexLock holds it for its scope or
// until Unlock, and a CondVar wait lets go of it while waiting and holds it again on return.
// (That the annotations themselves are checked is the `thread_safety.self_test` CTest.)
#include "common/mutex.h"

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <thread>

namespace nimbus {
namespace {

// Whether another thread can take `mu` now (it lets go at once).
bool FreeForAnotherThread(Mutex& mu) {
  return std::async(std::launch::async, [&] {
           if (!mu.TryLock()) return false;
           mu.Unlock();
           return true;
         }).get();
}

TEST(Mutex, TryLockFailsWhileAnotherThreadHoldsIt) {
  Mutex mu;
  {
    MutexLock lock(mu);
    EXPECT_FALSE(FreeForAnotherThread(mu));
  }
  EXPECT_TRUE(FreeForAnotherThread(mu));
}

TEST(MutexLock, UnlockLetsOthersInAndLockTakesItBack) {
  Mutex mu;
  int value = 0;
  MutexLock lock(mu);
  lock.Unlock();
  std::thread([&] {
    MutexLock other(mu);
    value = 1;
  }).join();
  lock.Lock();
  EXPECT_EQ(value, 1);
  EXPECT_FALSE(FreeForAnotherThread(mu));
}

TEST(MutexLock, ReleasedEarlyIsNotReleasedAgainAtTheEndOfItsScope) {
  Mutex mu;
  {
    MutexLock lock(mu);
    lock.Unlock();
    MutexLock again(mu);  // would deadlock had Unlock not let go
  }
  EXPECT_TRUE(FreeForAnotherThread(mu));  // and both scopes ended with the mutex free
}

TEST(CondVar, WaitLetsGoOfTheMutexUntilNotifiedAndHoldsItOnReturn) {
  Mutex mu;
  CondVar cv;
  bool ready = false;
  MutexLock lock(mu);
  std::thread notifier([&] {
    MutexLock other(mu);  // only possible while the waiter waits
    ready = true;
    cv.NotifyOne();
  });
  while (!ready) cv.Wait(mu);
  EXPECT_FALSE(FreeForAnotherThread(mu));
  lock.Unlock();
  notifier.join();
}

TEST(CondVar, TimedWaitsReportTheTimeoutWithTheMutexHeld) {
  Mutex mu;
  CondVar cv;
  MutexLock lock(mu);
  EXPECT_EQ(cv.WaitFor(mu, std::chrono::milliseconds(1)), std::cv_status::timeout);
  EXPECT_EQ(cv.WaitUntil(mu, std::chrono::steady_clock::now()), std::cv_status::timeout);
  EXPECT_FALSE(FreeForAnotherThread(mu));
}

}  // namespace
}  // namespace nimbus
