// ODCS v3.1 data contracts: the documents a product names with `contract_file:`
// and that `canopy import odcs` reads. Only the parts Canopy interprets are typed;
// every other key of the standard is kept as an ExtraField.
#pragma once

#include <string>
#include <vector>

#include "core/diagnostics.h"
#include "spec/model.h"

namespace canopy::spec {

struct OdcsDocument {
  std::string api_version;
  std::string id;
  std::string name;
  std::string version;
  std::string status;
  std::string domain;
  std::string data_product;
  ProductDescription description;
  std::vector<std::string> tags;
  std::vector<Contract> schema;  // one per ODCS schema object
  std::vector<SlaProperty> sla;
  std::vector<ExtraField> extra;
  std::string file;  // as given to LoadOdcsDocument
};

// Reads an ODCS document from `path`; problems are reported against `display_file`.
// Classifications are left as written (no mesh default applied).
OdcsDocument LoadOdcsDocument(const std::string& path, const std::string& display_file,
                              Diagnostics& diagnostics);

}  // namespace canopy::spec
