// Internal to spec: the readers of each kind of YAML object.
#pragma once

#include <yaml-cpp/yaml.h>

#include <optional>
#include <string>

#include "spec/model.h"
#include "spec/odcs.h"
#include "spec/yaml_reader.h"

namespace canopy::spec {

// ODCS parts (parse_contract.cpp).
Contract ParseContract(const YAML::Node& node, const ReadContext& context,
                       const std::string& default_object_name);
std::vector<SlaProperty> ParseSla(const YAML::Node& node, const ReadContext& context);
OdcsDocument ParseOdcsDocument(const YAML::Node& node, const ReadContext& context);

// Canopy files (parse_mesh.cpp).
Mesh ParseMeshFile(const YAML::Node& node, const ReadContext& context);
Domain ParseDomainFile(const YAML::Node& node, const ReadContext& context);
Product ParseProductFile(const YAML::Node& node, const ReadContext& context);
Dashboard ParseDashboardFile(const YAML::Node& node, const ReadContext& context);

// "user:alice" / "group:x" / "domain:y"; a bare name is a user when `bare_is_user`.
std::optional<PrincipalRef> ParsePrincipalRef(const YAML::Node& node, const ReadContext& context,
                                              bool bare_is_user);

// Parses a YAML file; a syntax error becomes a diagnostic and nullopt.
std::optional<YAML::Node> ParseYamlFile(const std::string& path, const ReadContext& context);

}  // namespace canopy::spec
