// The spec model: typed structures for the files a user writes (DESIGN §4).
//
// Every structure keeps the SourceLocation of the YAML node it came from, so that
// later parts (build, contract checks, governance) can point at the line to fix.
// The model is plain data: it owns its strings, holds no YAML, and is cheap to copy.
// It is produced by LoadMesh() (loader.h) and checked by ValidateMesh() (validate.h).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/diagnostics.h"

namespace canopy::spec {

// A key the ODCS standard (or a later version of it) defines that Canopy does not
// interpret. Kept verbatim, as YAML text, so exports can carry it on.
struct ExtraField {
  std::string key;
  std::string yaml;  // the value, emitted as YAML
  SourceLocation location;
};

// --- principals ------------------------------------------------------------

enum class PrincipalKind { kUser, kGroup, kDomain };

// "user:alice", "group:analysts", "domain:finance".
struct PrincipalRef {
  PrincipalKind kind = PrincipalKind::kUser;
  std::string name;
  SourceLocation location;

  std::string ToString() const;
};

struct User {
  std::string name;
  std::vector<std::string> groups;
  std::map<std::string, std::string> attributes;
  std::vector<std::string> clearances;
  SourceLocation location;
};

struct Group {
  std::string name;
  bool admin = false;
  std::string description;
  SourceLocation location;
};

// Clearances given centrally to a domain's own pipelines.
struct DomainGrantees {
  std::string name;
  std::vector<std::string> clearances;
  SourceLocation location;
};

struct Principals {
  std::vector<User> users;
  std::vector<Group> groups;
  std::vector<DomainGrantees> domains;
};

// --- governance ------------------------------------------------------------

enum class MaskMethod { kHash, kRedact, kNull, kPartial };
enum class RuleSeverity { kError, kWarning };

struct Mask {
  std::string classification;
  MaskMethod method = MaskMethod::kHash;
  SourceLocation location;
};

// A publish gate: SQL over the metadata views; each returned row is a violation.
struct GovernanceRule {
  std::string name;
  RuleSeverity severity = RuleSeverity::kError;
  std::string description;
  std::string sql;
  SourceLocation location;
};

struct Governance {
  std::vector<std::string> classifications = {"public", "internal", "confidential", "pii"};
  std::string default_classification = "internal";
  std::vector<Mask> masks;
  std::vector<GovernanceRule> rules;
  SourceLocation location;
};

// Resource limits for governed queries and for builds. Zero means "the default".
struct QueryLimits {
  int64_t memory_bytes = 1LL << 30;  // 1 GiB
  int threads = 2;
  int64_t max_rows = 1'000'000;
  int timeout_ms = 60'000;
};

struct BuildLimits {
  int64_t memory_bytes = 4LL << 30;  // 4 GiB per product sandbox
  int threads = 0;                   // 0: one per core
};

struct Limits {
  QueryLimits query;
  BuildLimits build;
};

// --- authentication (mesh.yaml `auth:`) ---------------------------------------

// Bearer tokens from the company's identity provider (OpenID Connect JWTs), accepted
// beside Canopy's own tokens. Exactly one of jwks_file and jwks_url is set.
struct OidcSettings {
  std::string issuer;     // the `iss` a token must carry, exactly
  std::string audience;   // one of the token's `aud`
  std::string jwks_file;  // the provider's keys (a JWKS document), relative to the mesh root
  std::string jwks_url;   // or where to fetch it (https://; http:// only to this machine)
  std::string user_claim = "preferred_username";  // names a user of principals.users
  std::string groups_claim;            // a list of group names; empty: the token gives no groups
  int64_t leeway_seconds = 60;         // clock skew allowed on exp and nbf
  int64_t jwks_refresh_seconds = 300;  // an unknown kid refetches the URL at most this often
  SourceLocation location;
  SourceLocation jwks_location;  // of jwks_file or jwks_url
};

struct AuthSettings {
  std::optional<OidcSettings> oidc;
  // What `canopy token create` gives when --expires is absent; nullopt: never expires.
  std::optional<int64_t> token_default_expiry_seconds;
  SourceLocation location;
};

// --- products --------------------------------------------------------------

enum class ProductStatus { kDraft, kActive, kDeprecated, kRetired };
enum class ProductType { kSourceAligned, kAggregate, kConsumerAligned };
enum class Visibility { kPublic, kInternal, kPrivate };
enum class FileFormat { kCsv, kJson, kParquet };

struct SemVer {
  int major = 0;
  int minor = 0;
  int patch = 0;
  std::string prerelease;  // after '-', may be empty

  std::string ToString() const;
};

// "domain.port": the SQL name of an output port.
struct PortRef {
  std::string domain;
  std::string port;
  SourceLocation location;

  std::string ToString() const { return domain + "." + port; }
};

struct ProductInput {
  std::string name;  // the table name the models see
  // Exactly one of file / product is set.
  std::optional<std::string> file;  // relative to the domain folder
  std::optional<PortRef> product;
  FileFormat format = FileFormat::kCsv;        // for file inputs
  std::map<std::string, std::string> options;  // reader options, as YAML scalars
  SourceLocation location;
};

// One step of a product's transform: a named SQL query.
struct Model {
  std::string name;
  std::string sql;                      // the query text (read from sql_file when given)
  std::optional<std::string> sql_file;  // relative to the domain folder
  SourceLocation location;
  SourceLocation sql_location;  // where the SQL text starts (inline scalar or line 1 of the file)
};

enum class QualityType { kLibrary, kSql, kText, kCustom };
enum class QualityMetric {
  kNone,  // for type sql / text / custom
  kNullValues,
  kMissingValues,
  kInvalidValues,
  kDuplicateValues,
  kRowCount,
};
enum class QualityOperator {
  kMustBe,
  kMustNotBe,
  kMustBeGreaterThan,
  kMustBeGreaterOrEqualTo,
  kMustBeLessThan,
  kMustBeLessOrEqualTo,
  kMustBeBetween,
  kMustNotBeBetween,
};
enum class QualityUnit { kRows, kPercent };

// An ODCS quality rule, at table level (property empty) or on one property.
struct QualityRule {
  std::string name;  // ODCS `name`, optional
  QualityType type = QualityType::kLibrary;
  QualityMetric metric = QualityMetric::kNone;
  std::optional<QualityOperator> op;  // absent only for text/custom rules
  double value = 0;                   // the threshold (low bound for between)
  double value_high = 0;              // high bound for between
  QualityUnit unit = QualityUnit::kRows;
  RuleSeverity severity = RuleSeverity::kError;
  std::string query;                      // for type sql, with {object}/{property}
  std::vector<std::string> valid_values;  // for invalidValues / missingValues
  bool valid_values_has_null = false;     // ODCS allows null among missing values
  std::optional<std::string> pattern;     // for invalidValues
  std::vector<std::string> properties;    // for table-level duplicateValues
  std::string description;
  std::vector<ExtraField> extra;
  SourceLocation location;
};

// ODCS logical types.
enum class LogicalType {
  kUnspecified,
  kString,
  kInteger,
  kNumber,
  kBoolean,
  kDate,
  kTimestamp,
  kTime,
  kObject,
  kArray
};

// An ODCS schema property: one column of an output port.
struct Property {
  std::string name;
  std::string physical_type;  // DuckDB type name, checked exactly when given
  LogicalType logical_type = LogicalType::kUnspecified;
  bool required = false;
  bool unique = false;
  bool primary_key = false;
  int primary_key_position = -1;
  std::string classification;  // resolved: the mesh default when the spec gives none
  bool classification_given = false;
  SourceLocation classification_location;
  // The owner's written reason for a classification weaker than the column's lineage
  // gives (ODCS customProperties: {property: declassified, value: <reason>}); empty: none.
  std::string declassified;
  std::string description;
  std::vector<std::string> tags;
  std::vector<QualityRule> quality;
  std::vector<ExtraField> extra;
  SourceLocation location;
};

// ODCS slaProperties entry.
struct SlaProperty {
  std::string property;  // frequency, latency, retention, ...
  std::string value;
  std::string unit;
  std::string element;
  std::vector<ExtraField> extra;
  SourceLocation location;
};

// An output port's contract: an ODCS v3.1 schema object.
struct Contract {
  std::string object_name;  // the ODCS schema object name (the port name for inline contracts)
  std::string description;
  std::vector<Property> properties;
  std::vector<QualityRule> quality;
  std::vector<ExtraField> extra;
  std::optional<std::string> contract_file;  // relative to the domain folder, when given
  SourceLocation location;
};

struct OutputPort {
  std::string name;  // SQL name is <domain>.<name>
  std::string from;  // the model it publishes
  std::string description;
  Contract contract;
  std::vector<SlaProperty> sla;
  SourceLocation location;
};

struct RowFilter {
  std::string output;  // a port of this product
  std::string where;   // SQL predicate
  std::vector<PrincipalRef> exempt;
  SourceLocation location;
};

struct ProductDescription {
  std::string purpose;
  std::string usage;
  std::string limitations;
};

struct Product {
  std::string domain;
  std::string name;
  SemVer version;
  ProductStatus status = ProductStatus::kActive;
  ProductType type = ProductType::kSourceAligned;
  std::string owner;  // a user name
  ProductDescription description;
  std::vector<std::string> tags;
  Visibility visibility = Visibility::kInternal;
  std::vector<PrincipalRef> grants;  // standing grants (access.grants)
  std::vector<ProductInput> inputs;
  std::vector<Model> transform;
  std::vector<OutputPort> outputs;
  std::vector<RowFilter> row_filters;
  std::string file;  // the product's YAML, relative to the mesh root
  SourceLocation location;

  std::string Address() const { return domain + "." + name; }
};

// A dashboard (kind: Dashboard, domains/<d>/dashboards/<name>.yaml): charts over governed
// queries that each viewer runs as themselves — a data product for people, with an owner,
// status and visibility like any other.
struct DashboardChart {
  std::string name;       // a SQL name, unique in the dashboard
  std::string title;      // shown above the tile
  std::string sql;        // one governed SELECT over output ports
  std::string vega_lite;  // the Vega-Lite spec (without data), as flow YAML; empty: a table
  int x = 0;              // the tile's place in the layout grid (columns from 0)
  int y = 0;
  int width = 1;
  int height = 1;
  SourceLocation location;
  SourceLocation sql_location;
};

// A value a viewer picks; each chart whose result has `column` shows only its rows.
struct DashboardFilter {
  std::string name;
  std::string column;
  std::string label;
  SourceLocation location;
};

struct Dashboard {
  std::string domain;
  std::string name;
  ProductStatus status = ProductStatus::kActive;
  std::string owner;
  ProductDescription description;
  std::vector<std::string> tags;
  Visibility visibility = Visibility::kInternal;
  int columns = 2;  // of the layout grid
  std::vector<DashboardFilter> filters;
  std::vector<DashboardChart> charts;
  std::string file;  // relative to the mesh root
  SourceLocation location;

  std::string Address() const { return domain + "." + name; }
};

struct Domain {
  std::string name;
  std::string description;
  std::vector<std::string> owners;    // user names
  std::vector<PrincipalRef> members;  // users or groups
  std::string folder;                 // "domains/<name>", relative to the mesh root
  std::vector<Product> products;
  std::vector<Dashboard> dashboards;
  SourceLocation location;
};

struct Mesh {
  std::string root;  // absolute path of the mesh folder
  std::string name;
  std::string description;
  std::string storage = ".canopy";
  std::string catalog = "sqlite";
  std::optional<std::string> openlineage_url;
  AuthSettings auth;
  Principals principals;
  Governance governance;
  Limits limits;
  std::vector<Domain> domains;
  SourceLocation location;

  // Lookups over the loaded model; nullptr when absent.
  const Domain* FindDomain(const std::string& name) const;
  const Product* FindProduct(const std::string& domain, const std::string& name) const;
  const Dashboard* FindDashboard(const std::string& domain, const std::string& name) const;
  const User* FindUser(const std::string& name) const;
  const Group* FindGroup(const std::string& name) const;
  // The product that publishes port `ref`, with the port; {nullptr, nullptr} when none does.
  std::pair<const Product*, const OutputPort*> FindPort(const std::string& domain,
                                                        const std::string& port) const;
};

// Names for enums, as written in YAML.
const char* ToString(ProductStatus value);
const char* ToString(ProductType value);
const char* ToString(Visibility value);
const char* ToString(FileFormat value);
const char* ToString(MaskMethod value);
const char* ToString(RuleSeverity value);
const char* ToString(QualityMetric value);
const char* ToString(QualityOperator value);
const char* ToString(LogicalType value);

}  // namespace canopy::spec
