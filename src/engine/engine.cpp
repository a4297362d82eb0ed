#include "engine/engine.h"

#include <duckdb.h>

#include <openssl/evp.h>
#include <pthread.h>

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <regex>

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
  // The engine's worker threads start here and take this thread's name: they go by the
  // engine's own (in `top -H`, in /proc), not by that of whichever thread opened them.
  char name[16] = "";
  ::pthread_getname_np(::pthread_self(), name, sizeof name);
  ::pthread_setname_np(::pthread_self(), "canopy-duckdb");
  const duckdb_state state = duckdb_open_ext(path, &handle_, config, &message);
  ::pthread_setname_np(::pthread_self(), name);
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

void Connection::Interrupt() {
  duckdb_interrupt(handle_);
}

DatabaseOptions WithoutFileAccess() {
  DatabaseOptions options;
  options.config["enable_external_access"] = "false";
  options.config["autoload_known_extensions"] = "false";
  options.config["autoinstall_known_extensions"] = "false";
  return options;
}

struct Result::Impl {
  duckdb_result result{};
  duckdb_data_chunk chunk = nullptr;
  std::vector<void*> data;
  std::vector<uint64_t*> validity;
  std::vector<duckdb_type> types;
  std::vector<uint8_t> scales;  // decimal scale per column
  std::vector<duckdb_type> decimal_storage;

  ~Impl() {
    if (chunk != nullptr) duckdb_destroy_data_chunk(&chunk);
    duckdb_destroy_result(&result);
  }
};

Result::Result(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {
  const int columns = ColumnCount();
  for (int i = 0; i < columns; ++i) {
    const auto column = static_cast<idx_t>(i);
    const duckdb_type type = duckdb_column_type(&impl_->result, column);
    impl_->types.push_back(type);
    uint8_t scale = 0;
    duckdb_type storage = DUCKDB_TYPE_INVALID;
    if (type == DUCKDB_TYPE_DECIMAL) {
      duckdb_logical_type logical = duckdb_column_logical_type(&impl_->result, column);
      scale = duckdb_decimal_scale(logical);
      storage = duckdb_decimal_internal_type(logical);
      duckdb_destroy_logical_type(&logical);
    }
    impl_->scales.push_back(scale);
    impl_->decimal_storage.push_back(storage);
  }
}
Result::Result(Result&&) noexcept = default;
Result& Result::operator=(Result&&) noexcept = default;
Result::~Result() = default;

int Result::ColumnCount() const {
  return static_cast<int>(duckdb_column_count(&impl_->result));
}

std::string Result::ColumnName(int column) const {
  const char* name = duckdb_column_name(&impl_->result, static_cast<idx_t>(column));
  return name != nullptr ? name : "";
}

bool Result::NextChunk() {
  if (impl_->chunk != nullptr) duckdb_destroy_data_chunk(&impl_->chunk);
  impl_->chunk = duckdb_fetch_chunk(impl_->result);
  if (impl_->chunk == nullptr) {
    const char* error = duckdb_result_error(&impl_->result);
    if (error != nullptr && *error != '\0') throw Error(ErrorCode::kFailed, error);
    return false;
  }
  const int columns = ColumnCount();
  impl_->data.assign(static_cast<size_t>(columns), nullptr);
  impl_->validity.assign(static_cast<size_t>(columns), nullptr);
  for (int i = 0; i < columns; ++i) {
    duckdb_vector vector = duckdb_data_chunk_get_vector(impl_->chunk, static_cast<idx_t>(i));
    impl_->data[static_cast<size_t>(i)] = duckdb_vector_get_data(vector);
    impl_->validity[static_cast<size_t>(i)] = duckdb_vector_get_validity(vector);
  }
  if (duckdb_data_chunk_get_size(impl_->chunk) == 0) return NextChunk();
  return true;
}

int64_t Result::ChunkRows() const {
  return impl_->chunk == nullptr ? 0
                                 : static_cast<int64_t>(duckdb_data_chunk_get_size(impl_->chunk));
}

bool Result::IsNull(int column, int64_t row) const {
  uint64_t* validity = impl_->validity.at(static_cast<size_t>(column));
  return validity != nullptr && !duckdb_validity_row_is_valid(validity, static_cast<idx_t>(row));
}

namespace {

template <typename T>
T At(void* data, int64_t row) {
  return static_cast<T*>(data)[row];
}

__extension__ using Int128 = __int128;
__extension__ using Uint128 = unsigned __int128;

// A decimal's unscaled integer, from the storage DuckDB chose for its width.
Int128 Unscaled(void* data, duckdb_type storage, int64_t row) {
  switch (storage) {
    case DUCKDB_TYPE_SMALLINT:
      return At<int16_t>(data, row);
    case DUCKDB_TYPE_INTEGER:
      return At<int32_t>(data, row);
    case DUCKDB_TYPE_BIGINT:
      return At<int64_t>(data, row);
    default: {
      const auto value = At<duckdb_hugeint>(data, row);
      return static_cast<Int128>((static_cast<Uint128>(static_cast<uint64_t>(value.upper)) << 64) |
                                 value.lower);
    }
  }
}

}  // namespace

int64_t Result::Int(int column, int64_t row) const {
  void* data = impl_->data.at(static_cast<size_t>(column));
  switch (impl_->types[static_cast<size_t>(column)]) {
    case DUCKDB_TYPE_BOOLEAN:
      return At<bool>(data, row) ? 1 : 0;
    case DUCKDB_TYPE_TINYINT:
      return At<int8_t>(data, row);
    case DUCKDB_TYPE_SMALLINT:
      return At<int16_t>(data, row);
    case DUCKDB_TYPE_INTEGER:
      return At<int32_t>(data, row);
    case DUCKDB_TYPE_BIGINT:
      return At<int64_t>(data, row);
    case DUCKDB_TYPE_UTINYINT:
      return At<uint8_t>(data, row);
    case DUCKDB_TYPE_USMALLINT:
      return At<uint16_t>(data, row);
    case DUCKDB_TYPE_UINTEGER:
      return At<uint32_t>(data, row);
    default:
      throw Error(ErrorCode::kInternal, "column " + ColumnName(column) + " is not an integer");
  }
}

double Result::Double(int column, int64_t row) const {
  const auto index = static_cast<size_t>(column);
  void* data = impl_->data.at(index);
  switch (impl_->types[index]) {
    case DUCKDB_TYPE_FLOAT:
      return At<float>(data, row);
    case DUCKDB_TYPE_DOUBLE:
      return At<double>(data, row);
    case DUCKDB_TYPE_DECIMAL: {
      const auto unscaled = static_cast<double>(Unscaled(data, impl_->decimal_storage[index], row));
      return unscaled / std::pow(10.0, impl_->scales[index]);
    }
    default:
      return static_cast<double>(Int(column, row));
  }
}

std::string_view Result::View(int column, int64_t row) const {
  if (Type(column) != ColumnType::kVarchar) {
    throw Error(ErrorCode::kInternal, "column " + ColumnName(column) + " is not VARCHAR");
  }
  auto* strings = static_cast<duckdb_string_t*>(impl_->data[static_cast<size_t>(column)]);
  duckdb_string_t& value = strings[row];
  return {duckdb_string_t_data(&value), duckdb_string_t_length(value)};
}

void Result::AppendText(int column, int64_t row, std::string& out) const {
  const auto index = static_cast<size_t>(column);
  switch (Type(column)) {
    case ColumnType::kVarchar:
      out.append(View(column, row));
      return;
    case ColumnType::kBoolean:
      out.append(Int(column, row) != 0 ? "true" : "false");
      return;
    case ColumnType::kInteger: {
      char digits[24];
      const auto done = std::to_chars(digits, digits + sizeof digits, Int(column, row));
      out.append(digits, done.ptr);
      return;
    }
    case ColumnType::kDouble: {
      char buffer[64];
      const int n = std::snprintf(buffer, sizeof buffer, "%.15g", Double(column, row));
      out.append(buffer, static_cast<size_t>(n));
      return;
    }
    case ColumnType::kDecimal: {
      // Exact, from the unscaled integer: a double would lose digits past the 15th.
      const Int128 unscaled = Unscaled(impl_->data[index], impl_->decimal_storage[index], row);
      const bool negative = unscaled < 0;
      Uint128 magnitude =
          negative ? -static_cast<Uint128>(unscaled) : static_cast<Uint128>(unscaled);
      const size_t scale = impl_->scales[index];
      char digits[48];
      size_t n = 0;
      do {
        digits[n++] = static_cast<char>('0' + static_cast<int>(magnitude % 10));
        magnitude /= 10;
      } while (magnitude != 0 || n <= scale);
      char text[52];
      size_t length = 0;
      if (negative) text[length++] = '-';
      for (size_t i = n; i-- > 0;) {
        text[length++] = digits[i];
        if (i == scale && scale > 0) text[length++] = '.';
      }
      out.append(text, length);
      return;
    }
    case ColumnType::kOther:
      break;
  }
  throw Error(ErrorCode::kInternal,
              "column " + ColumnName(column) + " must be cast to VARCHAR to be read as text");
}

std::string Result::Text(int column, int64_t row) const {
  std::string text;
  AppendText(column, row, text);
  return text;
}

struct Prepared::Impl {
  duckdb_prepared_statement statement = nullptr;
  ~Impl() { duckdb_destroy_prepare(&statement); }
};

Prepared::Prepared(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Prepared::Prepared(Prepared&&) noexcept = default;
Prepared& Prepared::operator=(Prepared&&) noexcept = default;
Prepared::~Prepared() = default;

int Prepared::ColumnCount() const {
  return static_cast<int>(duckdb_prepared_statement_column_count(impl_->statement));
}

std::string Prepared::ColumnName(int column) const {
  const char* name =
      duckdb_prepared_statement_column_name(impl_->statement, static_cast<idx_t>(column));
  std::string text = name != nullptr ? name : "";
  duckdb_free(const_cast<char*>(name));
  return text;
}

namespace {

ColumnType ReadAs(duckdb_type type) {
  switch (type) {
    case DUCKDB_TYPE_BOOLEAN:
      return ColumnType::kBoolean;
    case DUCKDB_TYPE_TINYINT:
    case DUCKDB_TYPE_SMALLINT:
    case DUCKDB_TYPE_INTEGER:
    case DUCKDB_TYPE_BIGINT:
    case DUCKDB_TYPE_UTINYINT:
    case DUCKDB_TYPE_USMALLINT:
    case DUCKDB_TYPE_UINTEGER:
      return ColumnType::kInteger;
    case DUCKDB_TYPE_FLOAT:
    case DUCKDB_TYPE_DOUBLE:
      return ColumnType::kDouble;
    case DUCKDB_TYPE_DECIMAL:
      return ColumnType::kDecimal;
    case DUCKDB_TYPE_VARCHAR:
      return ColumnType::kVarchar;
    default:
      return ColumnType::kOther;
  }
}

// A struct field name as DuckDB's type names print it: bare when it is a plain lower-case
// identifier, else in double quotes.
std::string FieldName(const std::string& name) {
  bool bare =
      !name.empty() && (std::islower(static_cast<unsigned char>(name[0])) != 0 || name[0] == '_');
  for (char c : name) {
    bare = bare && (std::islower(static_cast<unsigned char>(c)) != 0 ||
                    std::isdigit(static_cast<unsigned char>(c)) != 0 || c == '_');
  }
  if (bare) return name;
  std::string quoted = "\"";
  for (char c : name) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}

std::string TypeNameOf(duckdb_logical_type logical) {
  char* alias = duckdb_logical_type_get_alias(logical);
  if (alias != nullptr) {
    std::string name = alias;
    duckdb_free(alias);
    for (char& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return name;
  }
  auto child = [](duckdb_logical_type type) {
    std::string name = TypeNameOf(type);
    duckdb_destroy_logical_type(&type);
    return name;
  };
  switch (duckdb_get_type_id(logical)) {
    case DUCKDB_TYPE_BOOLEAN:
      return "BOOLEAN";
    case DUCKDB_TYPE_TINYINT:
      return "TINYINT";
    case DUCKDB_TYPE_SMALLINT:
      return "SMALLINT";
    case DUCKDB_TYPE_INTEGER:
      return "INTEGER";
    case DUCKDB_TYPE_BIGINT:
      return "BIGINT";
    case DUCKDB_TYPE_HUGEINT:
      return "HUGEINT";
    case DUCKDB_TYPE_UTINYINT:
      return "UTINYINT";
    case DUCKDB_TYPE_USMALLINT:
      return "USMALLINT";
    case DUCKDB_TYPE_UINTEGER:
      return "UINTEGER";
    case DUCKDB_TYPE_UBIGINT:
      return "UBIGINT";
    case DUCKDB_TYPE_UHUGEINT:
      return "UHUGEINT";
    case DUCKDB_TYPE_FLOAT:
      return "FLOAT";
    case DUCKDB_TYPE_DOUBLE:
      return "DOUBLE";
    case DUCKDB_TYPE_VARCHAR:
      return "VARCHAR";
    case DUCKDB_TYPE_BLOB:
      return "BLOB";
    case DUCKDB_TYPE_DATE:
      return "DATE";
    case DUCKDB_TYPE_TIME:
      return "TIME";
    case DUCKDB_TYPE_TIME_TZ:
      return "TIME WITH TIME ZONE";
    case DUCKDB_TYPE_TIMESTAMP:
      return "TIMESTAMP";
    case DUCKDB_TYPE_TIMESTAMP_TZ:
      return "TIMESTAMP WITH TIME ZONE";
    case DUCKDB_TYPE_TIMESTAMP_S:
      return "TIMESTAMP_S";
    case DUCKDB_TYPE_TIMESTAMP_MS:
      return "TIMESTAMP_MS";
    case DUCKDB_TYPE_TIMESTAMP_NS:
      return "TIMESTAMP_NS";
    case DUCKDB_TYPE_INTERVAL:
      return "INTERVAL";
    case DUCKDB_TYPE_UUID:
      return "UUID";
    case DUCKDB_TYPE_BIT:
      return "BIT";
    case DUCKDB_TYPE_DECIMAL:
      return "DECIMAL(" + std::to_string(duckdb_decimal_width(logical)) + "," +
             std::to_string(duckdb_decimal_scale(logical)) + ")";
    case DUCKDB_TYPE_LIST: {
      const std::string inner = child(duckdb_list_type_child_type(logical));
      return inner.empty() ? "" : inner + "[]";
    }
    case DUCKDB_TYPE_ARRAY: {
      const std::string inner = child(duckdb_array_type_child_type(logical));
      return inner.empty()
                 ? ""
                 : inner + "[" + std::to_string(duckdb_array_type_array_size(logical)) + "]";
    }
    case DUCKDB_TYPE_MAP: {
      const std::string key = child(duckdb_map_type_key_type(logical));
      const std::string value = child(duckdb_map_type_value_type(logical));
      return key.empty() || value.empty() ? "" : "MAP(" + key + ", " + value + ")";
    }
    case DUCKDB_TYPE_STRUCT: {
      std::string name = "STRUCT(";
      const idx_t fields = duckdb_struct_type_child_count(logical);
      for (idx_t i = 0; i < fields; ++i) {
        char* field = duckdb_struct_type_child_name(logical, i);
        const std::string field_name = field != nullptr ? field : "";
        duckdb_free(field);
        const std::string type = child(duckdb_struct_type_child_type(logical, i));
        if (type.empty()) return "";
        name += (i > 0 ? ", " : "") + FieldName(field_name) + " " + type;
      }
      return name + ")";
    }
    default:
      return "";  // ENUM, UNION and the like: their names spell out their members
  }
}

}  // namespace

ColumnType Prepared::Type(int column) const {
  return ReadAs(
      duckdb_prepared_statement_column_type(impl_->statement, static_cast<idx_t>(column)));
}

std::string Prepared::TypeName(int column) const {
  duckdb_logical_type logical =
      duckdb_prepared_statement_column_logical_type(impl_->statement, static_cast<idx_t>(column));
  std::string name = TypeNameOf(logical);
  duckdb_destroy_logical_type(&logical);
  return name;
}

ColumnType Result::Type(int column) const {
  return ReadAs(impl_->types.at(static_cast<size_t>(column)));
}

bool Prepared::IsQuery() const {
  return duckdb_prepared_statement_type(impl_->statement) == DUCKDB_STATEMENT_TYPE_SELECT;
}

Result Prepared::Execute() {
  auto impl = std::make_unique<Result::Impl>();
  if (duckdb_execute_prepared_streaming(impl_->statement, &impl->result) == DuckDBError) {
    const char* error = duckdb_result_error(&impl->result);
    throw Error(ErrorCode::kFailed, error != nullptr ? error : "query failed");
  }
  return Result(std::move(impl));
}

Prepared Connection::Prepare(const std::string& sql) {
  auto impl = std::make_unique<Prepared::Impl>();
  if (duckdb_prepare(handle_, sql.c_str(), &impl->statement) == DuckDBError) {
    throw Error(ErrorCode::kFailed, duckdb_prepare_error(impl->statement));
  }
  return Prepared(std::move(impl));
}

Result Connection::Query(const std::string& sql) {
  return Prepare(sql).Execute();
}

std::optional<std::string> Connection::QueryValue(const std::string& sql) {
  Result result = Query(sql);
  if (!result.NextChunk() || result.ColumnCount() == 0 || result.IsNull(0, 0)) {
    return std::nullopt;
  }
  return result.Text(0, 0);
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

std::string LibraryVersion() {
  return duckdb_library_version();
}

int ErrorLine(const std::string& message) {
  static const std::regex line(R"(LINE ([0-9]+):)");
  std::smatch match;
  if (!std::regex_search(message, match, line)) return 0;
  return std::stoi(match[1]);
}

}  // namespace canopy::engine

namespace canopy::engine {
namespace {

// The key of a keyed hash, with SHA-256 already fed the key (copied per value).
struct HashKey {
  EVP_MD_CTX* keyed = nullptr;
  explicit HashKey(const std::string& key) : keyed(EVP_MD_CTX_new()) {
    if (keyed == nullptr || EVP_DigestInit_ex(keyed, EVP_sha256(), nullptr) != 1 ||
        EVP_DigestUpdate(keyed, key.data(), key.size()) != 1) {
      throw Error(ErrorCode::kInternal, "OpenSSL: cannot start SHA-256");
    }
  }
  ~HashKey() { EVP_MD_CTX_free(keyed); }
  HashKey(const HashKey&) = delete;
  HashKey& operator=(const HashKey&) = delete;
};

// SHA-256(key || tag || bytes) into `digest` (32 bytes); `work` is a scratch context.
void KeyedDigest(const HashKey& key, EVP_MD_CTX* work, char tag, const void* bytes, size_t size,
                 unsigned char* digest) {
  EVP_MD_CTX_copy_ex(work, key.keyed);
  EVP_DigestUpdate(work, &tag, 1);
  EVP_DigestUpdate(work, bytes, size);
  unsigned int length = 0;
  EVP_DigestFinal_ex(work, digest, &length);
}

int64_t DigestNumber(const unsigned char* digest) {
  uint64_t value = 0;
  std::memcpy(&value, digest, sizeof value);
  return static_cast<int64_t>(value & 0x7fffffffffffffffULL);
}

bool RowValid(duckdb_vector vector, idx_t row) {
  uint64_t* validity = duckdb_vector_get_validity(vector);
  return validity == nullptr || duckdb_validity_row_is_valid(validity, row);
}

void SetNull(duckdb_vector output, idx_t row) {
  duckdb_vector_ensure_validity_writable(output);
  duckdb_validity_set_row_invalid(duckdb_vector_get_validity(output), row);
}

// A string of a VARCHAR vector: its bytes and length.
std::pair<const char*, uint32_t> StringAt(duckdb_vector vector, idx_t row) {
  auto* strings = static_cast<duckdb_string_t*>(duckdb_vector_get_data(vector));
  return {duckdb_string_t_data(&strings[row]), duckdb_string_t_length(strings[row])};
}

// Input types of the _num overloads.
enum class HashInput : uint8_t { kBigint, kDouble, kVarchar };

struct HashFunction {
  std::shared_ptr<HashKey> key;
  HashInput input = HashInput::kVarchar;
  bool text = false;  // _text: hex digits out; _num: a number out
};

void KeyedHash(duckdb_function_info info, duckdb_data_chunk input, duckdb_vector output) {
  const auto* function = static_cast<HashFunction*>(duckdb_scalar_function_get_extra_info(info));
  const idx_t rows = duckdb_data_chunk_get_size(input);
  duckdb_vector values = duckdb_data_chunk_get_vector(input, 0);
  EVP_MD_CTX* work = EVP_MD_CTX_new();
  if (work == nullptr) {
    duckdb_scalar_function_set_error(info, "out of memory (keyed hash)");
    return;
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  static const char* kHex = "0123456789abcdef";
  auto* numbers = static_cast<int64_t*>(duckdb_vector_get_data(output));
  for (idx_t row = 0; row < rows; ++row) {
    if (!RowValid(values, row)) {
      SetNull(output, row);
      continue;
    }
    switch (function->input) {
      case HashInput::kBigint: {
        const int64_t value = static_cast<int64_t*>(duckdb_vector_get_data(values))[row];
        KeyedDigest(*function->key, work, 'i', &value, sizeof value, digest);
        break;
      }
      case HashInput::kDouble: {
        double value = static_cast<double*>(duckdb_vector_get_data(values))[row];
        if (value == 0.0) value = 0.0;  // -0.0 and 0.0 hash alike, as they compare equal
        KeyedDigest(*function->key, work, 'd', &value, sizeof value, digest);
        break;
      }
      case HashInput::kVarchar: {
        auto [bytes, size] = StringAt(values, row);
        KeyedDigest(*function->key, work, 's', bytes, size, digest);
        break;
      }
    }
    if (function->text) {
      char hex[17];
      for (size_t i = 0; i < 8; ++i) {
        hex[2 * i] = kHex[digest[i] >> 4];
        hex[2 * i + 1] = kHex[digest[i] & 0xf];
      }
      hex[16] = '\0';
      duckdb_vector_assign_string_element(output, row, hex);
    } else {
      numbers[row] = DigestNumber(digest);
    }
  }
  EVP_MD_CTX_free(work);
}

duckdb_scalar_function HashOverload(const std::shared_ptr<HashKey>& key, HashInput input,
                                    bool text) {
  duckdb_scalar_function function = duckdb_create_scalar_function();
  const duckdb_type in = input == HashInput::kBigint   ? DUCKDB_TYPE_BIGINT
                         : input == HashInput::kDouble ? DUCKDB_TYPE_DOUBLE
                                                       : DUCKDB_TYPE_VARCHAR;
  duckdb_logical_type in_type = duckdb_create_logical_type(in);
  duckdb_logical_type out_type =
      duckdb_create_logical_type(text ? DUCKDB_TYPE_VARCHAR : DUCKDB_TYPE_BIGINT);
  duckdb_scalar_function_add_parameter(function, in_type);
  duckdb_scalar_function_set_return_type(function, out_type);
  duckdb_destroy_logical_type(&in_type);
  duckdb_destroy_logical_type(&out_type);
  duckdb_scalar_function_set_function(function, KeyedHash);
  duckdb_scalar_function_set_extra_info(
      function, new HashFunction{key, input, text},
      [](void* data) { delete static_cast<HashFunction*>(data); });
  return function;
}

void RegisterSet(Connection& connection, const std::string& name,
                 const std::vector<duckdb_scalar_function>& overloads) {
  duckdb_scalar_function_set set = duckdb_create_scalar_function_set(name.c_str());
  for (auto function : overloads) {
    duckdb_scalar_function_set_name(function, name.c_str());
    duckdb_add_scalar_function_to_set(set, function);
  }
  const duckdb_state state = duckdb_register_scalar_function_set(connection.handle(), set);
  for (auto function : overloads) duckdb_destroy_scalar_function(&function);
  duckdb_destroy_scalar_function_set(&set);
  if (state == DuckDBError) {
    throw Error(ErrorCode::kInternal, "DuckDB: cannot register the function " + name);
  }
}

struct LengthCap {
  int64_t max_bytes = 0;
  std::string message;
};

void CapLength(duckdb_function_info info, duckdb_data_chunk input, duckdb_vector output) {
  const auto* cap = static_cast<LengthCap*>(duckdb_scalar_function_get_extra_info(info));
  const idx_t rows = duckdb_data_chunk_get_size(input);
  duckdb_vector values = duckdb_data_chunk_get_vector(input, 0);
  for (idx_t row = 0; row < rows; ++row) {
    if (!RowValid(values, row)) {
      SetNull(output, row);
      continue;
    }
    auto [bytes, size] = StringAt(values, row);
    if (static_cast<int64_t>(size) > cap->max_bytes) {
      duckdb_scalar_function_set_error(info, cap->message.c_str());
      return;
    }
    duckdb_vector_assign_string_element_len(output, row, bytes, size);
  }
}

}  // namespace

void RegisterKeyedHash(Connection& connection, const std::string& name, const std::string& key) {
  auto hash_key = std::make_shared<HashKey>(key);
  RegisterSet(connection, name + "_text", {HashOverload(hash_key, HashInput::kVarchar, true)});
  RegisterSet(connection, name + "_num",
              {HashOverload(hash_key, HashInput::kBigint, false),
               HashOverload(hash_key, HashInput::kDouble, false),
               HashOverload(hash_key, HashInput::kVarchar, false)});
}

void RegisterLengthCap(Connection& connection, const std::string& name, int64_t max_bytes) {
  duckdb_scalar_function function = duckdb_create_scalar_function();
  duckdb_logical_type type = duckdb_create_logical_type(DUCKDB_TYPE_VARCHAR);
  duckdb_scalar_function_add_parameter(function, type);
  duckdb_scalar_function_set_return_type(function, type);
  duckdb_destroy_logical_type(&type);
  duckdb_scalar_function_set_function(function, CapLength);
  auto* cap = new LengthCap{max_bytes, "an argument of a string-distance function is longer than " +
                                           std::to_string(max_bytes) +
                                           " bytes; governed queries compare shorter strings"};
  duckdb_scalar_function_set_extra_info(function, cap,
                                        [](void* data) { delete static_cast<LengthCap*>(data); });
  RegisterSet(connection, name, {function});
}

}  // namespace canopy::engine
