// Clang's thread-safety annotations, so a class's locking contract is checked by the compiler
// instead of only written in its header: a field marked NIMBUS_GUARDED_BY(mu_) read or written
// without mu_ held, or a NIMBUS_REQUIRES(mu_) method called without it, is an error in the
// `thread_safety` check (scripts/check-thread-safety.py, clang++ -Wthread-safety). Under a
// compiler without the attributes (g++, which builds the daemon) every macro is empty.
//
// The names carry a NIMBUS_ prefix so they cannot collide with another library's macros of the
// same name (RELEASE and REQUIRES in particular are common). The capability type to use them
// with is nimbus::Mutex (common/mutex.h); the attributes themselves are documented at
// https://clang.llvm.org/docs/ThreadSafetyAnalysis.html.
//
// Threading: macros only.
#pragma once

#if defined(__clang__) && defined(__has_attribute)
#if __has_attribute(guarded_by)
#define NIMBUS_THREAD_ANNOTATION(x) __attribute__((x))
#endif
#endif
#ifndef NIMBUS_THREAD_ANNOTATION
#define NIMBUS_THREAD_ANNOTATION(x)
#endif

// On a class: its objects are capabilities (locks), named `x` in messages ("mutex").
#define NIMBUS_CAPABILITY(x) NIMBUS_THREAD_ANNOTATION(capability(x))
// On a class: an RAII object that holds a capability for its scope (MutexLock).
#define NIMBUS_SCOPED_CAPABILITY NIMBUS_THREAD_ANNOTATION(scoped_lockable)

// On a field: read or written only with `x` held.
#define NIMBUS_GUARDED_BY(x) NIMBUS_THREAD_ANNOTATION(guarded_by(x))
// On a pointer field: what it points to is read or written only with `x` held.
#define NIMBUS_PT_GUARDED_BY(x) NIMBUS_THREAD_ANNOTATION(pt_guarded_by(x))

// On a function: its callers hold these capabilities (the "...Locked" methods).
#define NIMBUS_REQUIRES(...) NIMBUS_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
// On a function: its callers must not hold these (it takes them itself).
#define NIMBUS_EXCLUDES(...) NIMBUS_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))

// On a function: it takes / lets go of these capabilities (of `this` when empty).
#define NIMBUS_ACQUIRE(...) NIMBUS_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define NIMBUS_RELEASE(...) NIMBUS_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
// On a function: it takes the capabilities when it returns `result` (true for TryLock).
#define NIMBUS_TRY_ACQUIRE(...) NIMBUS_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))

// On a function: it returns (a reference to) the capability `x`.
#define NIMBUS_RETURN_CAPABILITY(x) NIMBUS_THREAD_ANNOTATION(lock_returned(x))

// On a function: not analysed. Each use carries a comment saying why the function is safe.
#define NIMBUS_NO_THREAD_SAFETY_ANALYSIS NIMBUS_THREAD_ANNOTATION(no_thread_safety_analysis)
