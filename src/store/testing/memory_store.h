// The Store in memory, for tests of components that use a Store (admin API, scheduler, ...).
// Same contract as the SQLite store (store_contract_test.cc runs against both); nothing persists.
//
// Threading: thread-safe; one mutex guards everything. Never blocks on I/O.
#pragma once

#include <memory>

#include "store/store.h"

namespace nimbus::store {

// A store in memory. Same contract as OpenSqliteStore's, nothing persists.
std::unique_ptr<Store> NewMemoryStore();

}  // namespace nimbus::store
