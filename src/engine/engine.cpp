#include "engine/engine.h"

#include <duckdb.h>

#include "core/error.h"

namespace canopy::engine {

Database::Database(const DatabaseOptions& options) {
  duckdb_config config = nullptr;
  if (duckdb_create_config(&config) == DuckDBError) {
    throw Error(ErrorCode::kInternal, "DuckDB: cannot create a configuration");
  }
  for (const auto& [name, value] : options.config) {
    if (duckdb_set_config(config, name.c_str(), value.c_str()) == DuckDBError) {
      duckdb_destroy_config(&config);
      throw Error(ErrorCode::kInternal, "DuckDB: invalid setting " + name + "=" + value);
    }
  }
  char* message = nullptr;
  const char* path = options.path.empty() ? nullptr : options.path.c_str();
  const duckdb_state state = duckdb_open_ext(path, &handle_, config, &message);
  duckdb_destroy_config(&config);
  if (state == DuckDBError) {
    std::string text = message != nullptr ? message : "unknown error";
    duckdb_free(message);
    throw Error(ErrorCode::kFailed, "DuckDB: cannot open database: " + text);
  }
}

Database::~Database() {
  duckdb_close(&handle_);
}

Connection::Connection(Database& database) {
  if (duckdb_connect(database.handle(), &handle_) == DuckDBError) {
    throw Error(ErrorCode::kFailed, "DuckDB: cannot connect");
  }
}

Connection::~Connection() {
  duckdb_disconnect(&handle_);
}

struct Result::Impl {
  duckdb_result result{};
  ~Impl() { duckdb_destroy_result(&result); }
};

Result::Result(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Result::Result(Result&&) noexcept = default;
Result& Result::operator=(Result&&) noexcept = default;
Result::~Result() = default;

Result Connection::Query(const std::string& sql) {
  auto impl = std::make_unique<Result::Impl>();
  if (duckdb_query(handle_, sql.c_str(), &impl->result) == DuckDBError) {
    const char* error = duckdb_result_error(&impl->result);
    throw Error(ErrorCode::kFailed, error != nullptr ? error : "query failed");
  }
  return Result(std::move(impl));
}

void Connection::Execute(const std::string& sql) {
  duckdb_extracted_statements statements = nullptr;
  const idx_t count = duckdb_extract_statements(handle_, sql.c_str(), &statements);
  struct Guard {
    duckdb_extracted_statements* s;
    ~Guard() { duckdb_destroy_extracted(s); }
  } guard{&statements};
  if (count == 0) {
    const char* error = duckdb_extract_statements_error(statements);
    if (error != nullptr) throw Error(ErrorCode::kFailed, error);
    return;
  }
  for (idx_t i = 0; i < count; ++i) {
    duckdb_prepared_statement prepared = nullptr;
    const auto where = [&] {
      return count > 1
                 ? "statement " + std::to_string(i + 1) + " of " + std::to_string(count) + ": "
                 : std::string();
    };
    if (duckdb_prepare_extracted_statement(handle_, statements, i, &prepared) == DuckDBError) {
      std::string error = duckdb_prepare_error(prepared);
      duckdb_destroy_prepare(&prepared);
      throw Error(ErrorCode::kFailed, where() + error);
    }
    duckdb_result result{};
    const duckdb_state state = duckdb_execute_prepared(prepared, &result);
    std::string error = state == DuckDBError ? duckdb_result_error(&result) : "";
    duckdb_destroy_result(&result);
    duckdb_destroy_prepare(&prepared);
    if (state == DuckDBError) throw Error(ErrorCode::kFailed, where() + error);
  }
}

int64_t Result::RowCount() const {
  return static_cast<int64_t>(duckdb_row_count(&impl_->result));
}

int Result::ColumnCount() const {
  return static_cast<int>(duckdb_column_count(&impl_->result));
}

std::string Result::ColumnName(int column) const {
  const char* name = duckdb_column_name(&impl_->result, static_cast<idx_t>(column));
  return name != nullptr ? name : "";
}

bool Result::IsNull(int column, int64_t row) const {
  return duckdb_value_is_null(&impl_->result, static_cast<idx_t>(column), static_cast<idx_t>(row));
}

std::string Result::Text(int column, int64_t row) const {
  char* value =
      duckdb_value_varchar(&impl_->result, static_cast<idx_t>(column), static_cast<idx_t>(row));
  std::string out = value != nullptr ? value : "";
  duckdb_free(value);
  return out;
}

int64_t Result::Int(int column, int64_t row) const {
  return duckdb_value_int64(&impl_->result, static_cast<idx_t>(column), static_cast<idx_t>(row));
}

std::string LibraryVersion() {
  return duckdb_library_version();
}

}  // namespace canopy::engine
