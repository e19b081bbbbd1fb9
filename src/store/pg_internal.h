// Internal to src/store: the PostgreSQL implementations of the interfaces other issues
// added, over the shared pool (pg_store.cc owns the pool and the migrations).
#pragma once

#include <memory>

#include "store/pg.h"
#include "store/store.h"

namespace toani::store {

std::unique_ptr<ApprovalStore> NewPgApprovalStore(PgPool* pool);
std::unique_ptr<LimitCounter> NewPgLimitCounter(PgPool* pool);
std::unique_ptr<ExecutionStore> NewPgExecutionStore(PgPool* pool);

}  // namespace toani::store
