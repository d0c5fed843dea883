// The mutex, scoped lock and condition variable of nimbus's shared classes: std::mutex and
// std::condition_variable underneath, annotated so clang's -Wthread-safety (the `thread_safety`
// check of `make test`) proves that every NIMBUS_GUARDED_BY field is touched with its mutex held
// and every NIMBUS_REQUIRES ("...Locked") method is called with it.
//
//   mutable Mutex mu_;
//   CondVar wake_;
//   std::deque<Job> jobs_ NIMBUS_GUARDED_BY(mu_);
//
//   MutexLock lock(mu_);
//   while (jobs_.empty()) wake_.Wait(mu_);  // a loop, not a predicate lambda: see CondVar
//   Job job = std::move(jobs_.front());
//   lock.Unlock();                          // run it without the lock
//   job();
//
// Threading: Mutex and CondVar are thread-safe; a MutexLock belongs to the thread that made it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "common/thread_annotations.h"

namespace nimbus {

class NIMBUS_CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() NIMBUS_ACQUIRE() { mu_.lock(); }
  void Unlock() NIMBUS_RELEASE() { mu_.unlock(); }
  [[nodiscard]] bool TryLock() NIMBUS_TRY_ACQUIRE(true) { return mu_.try_lock(); }

 private:
  friend class CondVar;
  std::mutex mu_;
};

// Holds a Mutex from construction to the end of its scope. Unlock() lets go early (to call out
// without the lock: a callback, the disk, another component) and Lock() takes it again; the
// destructor unlocks only when it is held.
class NIMBUS_SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mu) NIMBUS_ACQUIRE(mu) : mu_(mu) { mu_.Lock(); }
  ~MutexLock() NIMBUS_RELEASE() {
    if (held_) mu_.Unlock();
  }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

  void Unlock() NIMBUS_RELEASE() {
    held_ = false;
    mu_.Unlock();
  }
  void Lock() NIMBUS_ACQUIRE() {
    mu_.Lock();
    held_ = true;
  }

 private:
  Mutex& mu_;
  bool held_ = true;
};

// std::condition_variable for a Mutex. Each wait requires the mutex, lets go of it while
// waiting and holds it again when it returns, so to the analysis the mutex stays held across
// the call. There is deliberately no predicate overload: clang analyses a lambda on its own,
// where the caller's lock is not known to be held, so a predicate reading guarded fields could
// not be checked. Wait in a loop instead: `while (!ready_) cv_.Wait(mu_);`. Wakes may be
// spurious, as with any condition variable.
class CondVar {
 public:
  CondVar() = default;
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;

  void Wait(Mutex& mu) NIMBUS_REQUIRES(mu) {
    Adopted lock(mu);
    cv_.wait(lock.lock);
  }
  // std::cv_status::timeout once `deadline` has passed.
  template <class Clock, class Duration>
  std::cv_status WaitUntil(Mutex& mu, const std::chrono::time_point<Clock, Duration>& deadline) NIMBUS_REQUIRES(mu) {
    Adopted lock(mu);
    return cv_.wait_until(lock.lock, deadline);
  }
  template <class Rep, class Period>
  std::cv_status WaitFor(Mutex& mu, const std::chrono::duration<Rep, Period>& timeout) NIMBUS_REQUIRES(mu) {
    Adopted lock(mu);
    return cv_.wait_for(lock.lock, timeout);
  }

  void NotifyOne() noexcept { cv_.notify_one(); }
  void NotifyAll() noexcept { cv_.notify_all(); }

 private:
  // A std::unique_lock over a mutex the caller already holds, which it leaves held: the
  // caller's MutexLock (or Unlock) still owns the unlocking, even if a wait throws.
  struct Adopted {
    explicit Adopted(Mutex& mu) : lock(mu.mu_, std::adopt_lock) {}
    ~Adopted() { lock.release(); }
    std::unique_lock<std::mutex> lock;
  };
  std::condition_variable cv_;
};

}  // namespace nimbus
