#include "spec/model.h"

namespace canopy::spec {

std::string PrincipalRef::ToString() const {
  switch (kind) {
    case PrincipalKind::kUser:
      return "user:" + name;
    case PrincipalKind::kGroup:
      return "group:" + name;
    case PrincipalKind::kDomain:
      return "domain:" + name;
  }
  return name;
}

std::string SemVer::ToString() const {
  std::string out =
      std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
  if (!prerelease.empty()) out += "-" + prerelease;
  return out;
}

const Domain* Mesh::FindDomain(const std::string& domain_name) const {
  for (const auto& domain : domains) {
    if (domain.name == domain_name) return &domain;
  }
  return nullptr;
}

const Product* Mesh::FindProduct(const std::string& domain_name,
                                 const std::string& product_name) const {
  const Domain* domain = FindDomain(domain_name);
  if (domain == nullptr) return nullptr;
  for (const auto& product : domain->products) {
    if (product.name == product_name) return &product;
  }
  return nullptr;
}

const Dashboard* Mesh::FindDashboard(const std::string& domain_name,
                                     const std::string& dashboard_name) const {
  const Domain* domain = FindDomain(domain_name);
  if (domain == nullptr) return nullptr;
  for (const auto& dashboard : domain->dashboards) {
    if (dashboard.name == dashboard_name) return &dashboard;
  }
  return nullptr;
}

const User* Mesh::FindUser(const std::string& user_name) const {
  for (const auto& user : principals.users) {
    if (user.name == user_name) return &user;
  }
  return nullptr;
}

const Group* Mesh::FindGroup(const std::string& group_name) const {
  for (const auto& group : principals.groups) {
    if (group.name == group_name) return &group;
  }
  return nullptr;
}

std::pair<const Product*, const OutputPort*> Mesh::FindPort(const std::string& domain_name,
                                                            const std::string& port) const {
  const Domain* domain = FindDomain(domain_name);
  if (domain == nullptr) return {nullptr, nullptr};
  for (const auto& product : domain->products) {
    for (const auto& output : product.outputs) {
      if (output.name == port) return {&product, &output};
    }
  }
  return {nullptr, nullptr};
}

const char* ToString(ProductStatus value) {
  switch (value) {
    case ProductStatus::kDraft:
      return "draft";
    case ProductStatus::kActive:
      return "active";
    case ProductStatus::kDeprecated:
      return "deprecated";
    case ProductStatus::kRetired:
      return "retired";
  }
  return "?";
}

const char* ToString(ProductType value) {
  switch (value) {
    case ProductType::kSourceAligned:
      return "sourceAligned";
    case ProductType::kAggregate:
      return "aggregate";
    case ProductType::kConsumerAligned:
      return "consumerAligned";
  }
  return "?";
}

const char* ToString(Visibility value) {
  switch (value) {
    case Visibility::kPublic:
      return "public";
    case Visibility::kInternal:
      return "internal";
    case Visibility::kPrivate:
      return "private";
  }
  return "?";
}

const char* ToString(FileFormat value) {
  switch (value) {
    case FileFormat::kCsv:
      return "csv";
    case FileFormat::kJson:
      return "json";
    case FileFormat::kParquet:
      return "parquet";
  }
  return "?";
}

const char* ToString(MaskMethod value) {
  switch (value) {
    case MaskMethod::kHash:
      return "hash";
    case MaskMethod::kRedact:
      return "redact";
    case MaskMethod::kNull:
      return "null";
    case MaskMethod::kPartial:
      return "partial";
  }
  return "?";
}

const char* ToString(RuleSeverity value) {
  return value == RuleSeverity::kError ? "error" : "warning";
}

const char* ToString(QualityMetric value) {
  switch (value) {
    case QualityMetric::kNone:
      return "";
    case QualityMetric::kNullValues:
      return "nullValues";
    case QualityMetric::kMissingValues:
      return "missingValues";
    case QualityMetric::kInvalidValues:
      return "invalidValues";
    case QualityMetric::kDuplicateValues:
      return "duplicateValues";
    case QualityMetric::kRowCount:
      return "rowCount";
  }
  return "?";
}

const char* ToString(QualityOperator value) {
  switch (value) {
    case QualityOperator::kMustBe:
      return "mustBe";
    case QualityOperator::kMustNotBe:
      return "mustNotBe";
    case QualityOperator::kMustBeGreaterThan:
      return "mustBeGreaterThan";
    case QualityOperator::kMustBeGreaterOrEqualTo:
      return "mustBeGreaterOrEqualTo";
    case QualityOperator::kMustBeLessThan:
      return "mustBeLessThan";
    case QualityOperator::kMustBeLessOrEqualTo:
      return "mustBeLessOrEqualTo";
    case QualityOperator::kMustBeBetween:
      return "mustBeBetween";
    case QualityOperator::kMustNotBeBetween:
      return "mustNotBeBetween";
  }
  return "?";
}

const char* ToString(LogicalType value) {
  switch (value) {
    case LogicalType::kUnspecified:
      return "";
    case LogicalType::kString:
      return "string";
    case LogicalType::kInteger:
      return "integer";
    case LogicalType::kNumber:
      return "number";
    case LogicalType::kBoolean:
      return "boolean";
    case LogicalType::kDate:
      return "date";
    case LogicalType::kTimestamp:
      return "timestamp";
    case LogicalType::kTime:
      return "time";
    case LogicalType::kObject:
      return "object";
    case LogicalType::kArray:
      return "array";
  }
  return "?";
}

}  // namespace canopy::spec
