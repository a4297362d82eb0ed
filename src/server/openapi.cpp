// The OpenAPI 3 description of the REST API (DESIGN §6).
#include <nlohmann/json.hpp>

#include "server/api.h"

namespace canopy::server {
namespace {

using nlohmann::json;

json Ref(const std::string& name) {
  return {{"$ref", "#/components/schemas/" + name}};
}

json JsonContent(const json& schema) {
  return {{"application/json", {{"schema", schema}}}};
}

json Responses(int ok, const std::string& description, const json& schema,
               std::initializer_list<int> errors) {
  json responses = {
      {std::to_string(ok), {{"description", description}, {"content", JsonContent(schema)}}}};
  for (int code : errors) {
    responses[std::to_string(code)] = {{"description", "see the error's message"},
                                       {"content", JsonContent(Ref("Error"))}};
  }
  return responses;
}

json PathParam(const std::string& name, const std::string& description) {
  return {{"name", name},
          {"in", "path"},
          {"required", true},
          {"description", description},
          {"schema", {{"type", "string"}}}};
}

json QueryParam(const std::string& name, const std::string& type, const std::string& description) {
  return {{"name", name},
          {"in", "query"},
          {"required", false},
          {"description", description},
          {"schema", {{"type", type}}}};
}

}  // namespace

std::string OpenApiDocument(const std::string& version) {
  const json object = {{"type", "object"}};
  const json array_of_objects = {{"type", "array"}, {"items", object}};
  json doc;
  doc["openapi"] = "3.0.3";
  doc["info"] = {{"title", "Canopy REST API"},
                 {"version", version},
                 {"description",
                  "Discover, request and query the governed data products of a Canopy mesh. "
                  "Every endpoint but /api/v1/health needs Authorization: Bearer <token> "
                  "(canopy token create USER)."}};
  doc["servers"] = json::array({{{"url", "/"}}});
  doc["security"] = json::array({{{"bearer", json::array()}}});
  doc["components"]["securitySchemes"]["bearer"] = {{"type", "http"}, {"scheme", "bearer"}};
  doc["components"]["schemas"]["Error"] = {{"type", "object"},
                                           {"required", {"error"}},
                                           {"properties",
                                            {{"error",
                                              {{"type", "object"},
                                               {"required", {"code", "message"}},
                                               {"properties",
                                                {{"code", {{"type", "string"}}},
                                                 {"message", {{"type", "string"}}},
                                                 {"hint", {{"type", "string"}}}}}}}}}};
  doc["components"]["schemas"]["QueryResult"] = {
      {"type", "object"},
      {"required", {"columns", "rows", "masked"}},
      {"properties",
       {{"columns",
         {{"type", "array"},
          {"items",
           {{"type", "object"},
            {"properties", {{"name", {{"type", "string"}}}, {"type", {{"type", "string"}}}}}}}}},
        {"rows", {{"type", "array"}, {"items", {{"type", "array"}, {"items", json::object()}}}}},
        {"masked", {{"type", "array"}, {"items", {{"type", "string"}}}}},
        {"truncated", {{"type", "boolean"}}}}}};

  const std::initializer_list<int> auth = {401, 500};
  auto& paths = doc["paths"];
  paths["/api/v1/health"]["get"] = {{"summary", "Liveness; needs no token"},
                                    {"security", json::array()},
                                    {"responses", Responses(200, "the server is up", object, {})}};
  paths["/api/v1/openapi.json"]["get"] = {{"summary", "This document"},
                                          {"responses", Responses(200, "OpenAPI 3", object, auth)}};
  paths["/api/v1/me"]["get"] = {{"summary", "The principal the token belongs to"},
                                {"responses", Responses(200, "the principal", object, auth)}};
  paths["/api/v1/domains"]["get"] = {
      {"summary", "The domains"}, {"responses", Responses(200, "domains", array_of_objects, auth)}};
  paths["/api/v1/domains/{domain}"]["get"] = {
      {"summary", "One domain with its products"},
      {"parameters", {PathParam("domain", "domain name")}},
      {"responses", Responses(200, "the domain", object, {401, 404, 500})}};
  paths["/api/v1/products"]["get"] = {
      {"summary",
       "Every product the principal may know of (private products of other domains "
       "are hidden), with freshness and quality"},
      {"responses", Responses(200, "product summaries", array_of_objects, auth)}};
  paths["/api/v1/products/{domain}/{product}"]["get"] = {
      {"summary", "One product: description, contract, live version, quality, history, access"},
      {"parameters", {PathParam("domain", "domain"), PathParam("product", "product")}},
      {"responses", Responses(200, "the product", object, {401, 404, 500})}};
  paths["/api/v1/products/{domain}/{product}/sample"]["get"] = {
      {"summary", "Sample rows of a port, through governance (masked for this reader)"},
      {"parameters",
       {PathParam("domain", "domain"), PathParam("product", "product"),
        QueryParam("port", "string", "output port (default: the first)"),
        QueryParam("limit", "integer", "rows, 1 to 1000 (default 20)")}},
      {"responses", Responses(200, "rows", Ref("QueryResult"), {400, 401, 403, 404, 500})}};
  paths["/api/v1/search"]["get"] = {
      {"summary", "Ranked full-text search over names, descriptions, tags, ports and columns"},
      {"parameters", {QueryParam("q", "string", "words; the last may be a prefix")}},
      {"responses", Responses(200, "hits, best first", array_of_objects, auth)}};
  paths["/api/v1/query"]["post"] = {
      {"summary", "Run one governed SELECT over output ports; the result streams"},
      {"requestBody",
       {{"required", true},
        {"content", JsonContent({{"type", "object"},
                                 {"required", {"sql"}},
                                 {"properties",
                                  {{"sql", {{"type", "string"}}},
                                   {"limit", {{"type", "integer"}, {"minimum", 1}}}}}})}}},
      {"responses", Responses(200, "the result", Ref("QueryResult"), {400, 401, 403, 413, 500})}};
  const json text = {{"type", "string"}};
  const json lineage_schema = {
      {"type", "object"},
      {"required", {"product", "nodes", "edges", "column_edges", "port_lineage"}},
      {"properties",
       {{"product", text},
        {"nodes",
         {{"type", "array"},
          {"items",
           {{"type", "object"},
            {"description", "a port (id = its SQL name) or an input file (id = file:domain/path)"},
            {"properties",
             {{"id", text},
              {"kind", {{"type", "string"}, {"enum", {"port", "file"}}}},
              {"domain", text},
              {"label", text},
              {"product", text}}}}}}},
        {"edges",
         {{"type", "array"},
          {"items", {{"type", "object"}, {"properties", {{"from", text}, {"to", text}}}}}}},
        {"column_edges",
         {{"type", "array"},
          {"description",
           "column-level lineage of the live versions: port.column reads source.source_column"},
          {"items",
           {{"type", "object"},
            {"properties",
             {{"port", text},
              {"column", text},
              {"source", text},
              {"source_column", text},
              {"type", {{"type", "string"}, {"enum", {"DIRECT", "INDIRECT"}}}},
              {"subtype", text},
              {"dataset",
               {{"type", "boolean"},
                {"description", "a row-level effect on every column of the port"}}}}}}}}},
        {"port_lineage",
         {{"type", "array"},
          {"description", "whether each port's column lineage was analysed; if not, why"},
          {"items",
           {{"type", "object"},
            {"properties",
             {{"port", text}, {"analysed", {{"type", "boolean"}}}, {"reason", text}}}}}}}}}};
  paths["/api/v1/lineage/{domain}/{product}"]["get"] = {
      {"summary",
       "Upstream and downstream lineage of a product: ports and files, and the column-level "
       "edges among them (private products of other domains are left out)"},
      {"parameters", {PathParam("domain", "domain"), PathParam("product", "product")}},
      {"responses", Responses(200, "nodes and edges", lineage_schema, {401, 404, 500})}};
  paths["/api/v1/access-requests"]["get"] = {
      {"summary", "Access requests made by, or decidable by, the principal"},
      {"responses", Responses(200, "requests, newest first", array_of_objects, auth)}};
  paths["/api/v1/access-requests"]["post"] = {
      {"summary", "Ask for read access to a product"},
      {"requestBody",
       {{"required", true},
        {"content",
         JsonContent({{"type", "object"},
                      {"required", {"product", "purpose"}},
                      {"properties",
                       {{"product", {{"type", "string"}}}, {"purpose", {{"type", "string"}}}}}})}}},
      {"responses", Responses(201, "the request", object, {400, 401, 404, 409, 413, 500})}};
  for (const char* action : {"approve", "deny"}) {
    paths[std::string("/api/v1/access-requests/{id}/") + action]["post"] = {
        {"summary", std::string(action == std::string("approve") ? "Approve" : "Deny") +
                        " a pending request (owners of the product's domain and admins)"},
        {"parameters", {PathParam("id", "request id")}},
        {"requestBody",
         {{"required", false},
          {"content",
           JsonContent({{"type", "object"}, {"properties", {{"note", {{"type", "string"}}}}}})}}},
        {"responses",
         Responses(200, "the decided request", object, {400, 401, 403, 404, 409, 500})}};
  }
  paths["/api/v1/grants"]["get"] = {
      {"summary", "Grants held by the principal, or on products it administers"},
      {"responses", Responses(200, "grants", array_of_objects, auth)}};
  const json grant_schema = {
      {"type", "object"},
      {"required", {"product", "grantee"}},
      {"properties", {{"product", {{"type", "string"}}}, {"grantee", {{"type", "string"}}}}}};
  const json grant_body = {{"required", true}, {"content", JsonContent(grant_schema)}};
  paths["/api/v1/grants"]["post"] = {
      {"summary", "Grant read access (owners and admins)"},
      {"requestBody", grant_body},
      {"responses", Responses(201, "granted", object, {400, 401, 403, 404, 409, 500})}};
  paths["/api/v1/grants"]["delete"] = {
      {"summary", "Revoke a runtime grant (owners and admins)"},
      {"parameters",
       {QueryParam("product", "string", "domain.product"),
        QueryParam("grantee", "string", "user:x | group:x | domain:x")}},
      {"responses", Responses(200, "revoked", object, {400, 401, 403, 404, 500})}};
  paths["/api/v1/governance"]["get"] = {
      {"summary", "Classifications, masks and publish gates with their current results (admins)"},
      {"responses", Responses(200, "governance", object, {401, 403, 500})}};
  // The builder (issue: the stage for business users).
  auto body_of = [](const json& properties, std::initializer_list<const char*> required) {
    json schema = {{"type", "object"}, {"properties", properties}};
    if (required.size() > 0) schema["required"] = required;
    return json{{"required", true}, {"content", JsonContent(schema)}};
  };
  const json flow = {
      {"type", "object"},
      {"description",
       "a flow: {version: 1, product: {name, purpose, …}, blocks: [{id, type, …}]}"}};
  paths["/api/v1/builder/sources"]["get"] = {
      {"summary",
       "The ports this principal may read, each column with its classification and whether it is "
       "masked for them"},
      {"responses", Responses(200, "the sources", object, {401})}};
  paths["/api/v1/builder/vocabulary"]["get"] = {
      {"summary",
       "Block types, filter operators, measures, quality metrics and the mesh's classifications"},
      {"responses", Responses(200, "the vocabulary", object, {401})}};
  paths["/api/v1/builder/preview"]["post"] = {
      {"summary",
       "A block's first rows, row count and column profile, run as this principal through the "
       "guard"},
      {"requestBody", body_of({{"flow", flow},
                               {"block", {{"type", "string"}}},
                               {"limit",
                                {{"type", "integer"},
                                 {"minimum", 0},
                                 {"description",
                                  "rows to return (default 50, at most 500); 0 with profile: the "
                                  "profile alone"}}},
                               {"profile", {{"type", "boolean"}}},
                               {"domain", {{"type", "string"}}}},
                              {"flow"})},
      {"responses", Responses(200, "the preview", object, {400, 401, 403, 500})}};
  paths["/api/v1/domains/{domain}/products"]["post"] = {
      {"summary",
       "Save a flow as a new product of the domain (members only); dry_run returns the files "
       "without writing"},
      {"parameters", {PathParam("domain", "the domain")}},
      {"requestBody", body_of({{"flow", flow}, {"dry_run", {{"type", "boolean"}}}}, {"flow"})},
      {"responses", Responses(201, "saved: the files written", object, {400, 401, 403, 404, 409})}};
  paths["/api/v1/domains/{domain}/products/{product}"]["put"] = {
      {"summary", "Save a flow over a product the builder made (members only)"},
      {"parameters", {PathParam("domain", "the domain"), PathParam("product", "the product")}},
      {"requestBody", body_of({{"flow", flow}, {"dry_run", {{"type", "boolean"}}}}, {"flow"})},
      {"responses", Responses(200, "saved: the files written", object, {400, 401, 403, 404, 409})}};
  paths["/api/v1/domains/{domain}/uploads"]["get"] = {
      {"summary", "The domain's files (data/*.csv|json|parquet) with their columns (members only)"},
      {"parameters", {PathParam("domain", "the domain")}},
      {"responses", Responses(200, "the files and the upload limit", object, {401, 403, 404})}};
  paths["/api/v1/domains/{domain}/uploads"]["post"] = {
      {"summary",
       "Upload a CSV, JSON or Parquet file into the domain's data folder (members only); the "
       "body is the file, its type sniffed and checked against its name"},
      {"parameters",
       {PathParam("domain", "the domain"),
        QueryParam("name", "string",
                   "<name>.csv|json|parquet: lowercase letters, digits and underscores"),
        QueryParam("replace", "boolean", "true to replace a file of that name")}},
      {"requestBody",
       {{"required", true},
        {"content",
         {{"application/octet-stream",
           {{"schema", {{"type", "string"}, {"format", "binary"}}}}}}}}},
      {"responses", Responses(201, "stored: its format, rows and columns", object,
                              {400, 401, 403, 404, 409, 413})}};
  paths["/api/v1/domains/{domain}/products/{product}/flow"]["get"] = {
      {"summary", "The flow a product was made from; a product made by hand opens read-only"},
      {"parameters", {PathParam("domain", "the domain"), PathParam("product", "the product")}},
      {"responses", Responses(200, "the flow", object, {401, 404})}};
  paths["/api/v1/builds"]["post"] = {
      {"summary",
       "Build products of one's domains; progress streams as JSON lines (application/x-ndjson)"},
      {"requestBody", body_of({{"targets", {{"type", "array"}, {"items", {{"type", "string"}}}}},
                               {"force", {{"type", "boolean"}}}},
                              {"targets"})},
      {"responses",
       Responses(200, "events: planned, step, finished, done", object, {400, 401, 403, 404})}};
  // Dashboards.
  paths["/api/v1/dashboards"]["get"] = {
      {"summary", "The dashboards this principal may see"},
      {"responses", Responses(200, "dashboards", array_of_objects, {401})}};
  paths["/api/v1/dashboards/{domain}/{dashboard}"]["get"] = {
      {"summary", "A dashboard: its charts, the ports each reads and this viewer's access to them"},
      {"parameters", {PathParam("domain", "the domain"), PathParam("dashboard", "the dashboard")}},
      {"responses", Responses(200, "the dashboard", object, {401, 404})}};
  paths["/api/v1/dashboards/{domain}/{dashboard}/charts/{chart}"]["post"] = {
      {"summary", "A chart's rows, run as the viewer (grants, masks, row filters)"},
      {"parameters",
       {PathParam("domain", "the domain"), PathParam("dashboard", "the dashboard"),
        PathParam("chart", "the chart")}},
      {"requestBody", body_of({{"filters", object}}, {})},
      {"responses", Responses(200, "the rows", object, {400, 401, 403, 404, 500})}};
  paths["/api/v1/domains/{domain}/dashboards/{dashboard}"]["put"] = {
      {"summary",
       "Save a dashboard of the domain (members only); create: true refuses to replace one"},
      {"parameters", {PathParam("domain", "the domain"), PathParam("dashboard", "the dashboard")}},
      {"requestBody",
       body_of({{"charts", array_of_objects}, {"create", {{"type", "boolean"}}}}, {"charts"})},
      {"responses", Responses(201, "saved", object, {400, 401, 403, 404, 409})}};
  paths["/api/v1/audit"]["get"] = {
      {"summary", "The audit log, newest first, and whether its hash chain verifies (admins)"},
      {"parameters",
       {QueryParam("limit", "integer", "entries (default 200)"),
        QueryParam("principal", "string", "only this principal"),
        QueryParam("action", "string", "only this action"),
        QueryParam("outcome", "string", "ok | denied | failed")}},
      {"responses", Responses(200, "entries", object, {401, 403, 500})}};
  return doc.dump(2);
}

}  // namespace canopy::server
