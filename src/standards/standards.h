// The open standards in and out (DESIGN §1 "Data as a product", §5 export/import):
// a product as an ODCS v3.1 data contract and as an ODPS v1.0 data product, and an
// ODCS contract as the start of a new draft product.
//
// Exports are YAML text that validates against the standards' JSON schemas. Ids are
// derived from the product's address (domain.product), so exporting the same product
// twice, from any machine, gives the same ids, and an ODPS document can name the
// contract ids of the products it reads without exporting them.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "catalog/catalog.h"
#include "spec/model.h"

namespace canopy::standards {

// The id of the ODCS export of product `domain`.`product`: a UUID-shaped (version 8,
// RFC 9562 variant) prefix of SHA-256("canopy:odcs:" + domain + "." + product).
std::string OdcsContractId(const std::string& domain, const std::string& product);

// The id of the ODPS export of the product: the same over "canopy:odps:" + domain.product.
std::string OdpsProductId(const std::string& domain, const std::string& product);

// A valid ODCS v3.1 document (YAML text) for the product: one schema object per
// output port (name = the contract's object name, which is the port name unless the
// port follows a named object of a contract file; physicalName = the SQL name
// domain.port; physicalType table), each property with physicalType (the published
// DuckDB type when `live` is given, else the contract's), logicalType (derived from
// the physical type when the contract gives none), classification (as governance
// applies it: the mesh default when the spec gives none), required/unique/primaryKey
// (+position), description, tags and quality rules in ODCS vocabulary. ODCS keys
// Canopy keeps without reading (ExtraField), and the document-level keys of the
// contract files the ports name (servers, support, price, roles, ...), are carried on.
// A kept key the ODCS schema does not allow where it stands, or one whose place Canopy
// fills itself (an object's physicalName), becomes a customProperties entry there — on a
// library quality rule it goes back into `arguments`, on an SLA entry (closed in ODCS) it
// is left out — so the output stays valid. Ports' SLAs become slaProperties (once when
// all ports share them, else with `element` naming the object); the product owner, the
// domain owners and the contract files' team members the team.
std::string ExportOdcs(const spec::Mesh& mesh, const spec::Product& product,
                       const std::optional<catalog::LiveVersion>& live);

// A valid ODPS v1.0 document (YAML text): the product's identity (id, name, version,
// status, domain, description, tags), inputPorts for its inputs from other products
// (with the upstream products' contract ids), outputPorts with the contract id of the
// product's ODCS export, and the team (owner, domain owners).
std::string ExportOdps(const spec::Mesh& mesh, const spec::Product& product,
                       const std::optional<catalog::LiveVersion>& live);

struct ImportResult {
  // Files to write, relative to the domain folder (domains/<domain>/):
  // products/<name>.yaml and contracts/<name>.odcs.yaml (the contract as given).
  std::vector<std::pair<std::string, std::string>> files;
  // What the user must add or decide before the draft builds (inputs, transform,
  // owner, classifications the mesh lacks, renamed ports, ...), one sentence each.
  std::vector<std::string> next_steps;
  std::string product_name;
};

// A new draft product for the ODCS document at `odcs_path`: one output port per schema
// object (contract_file + contract_object), status draft, no inputs or transform. The
// name is `name_or_empty`, else the document's name (or dataProduct, or the file's
// name) made a valid SQL name. Nothing is written.
// Throws Error(kNotFound) for an unknown domain or a missing file, Error(kUsage) for a
// given name that is not a valid SQL name, Error(kInvalidInput) with the file:line:col
// diagnostics when the document does not load, Error(kConflict) when the product (or
// one of the files) exists already.
ImportResult ImportOdcs(const spec::Mesh& mesh, const std::string& odcs_path,
                        const std::string& domain, const std::string& name_or_empty);

}  // namespace canopy::standards
