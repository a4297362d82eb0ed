// The catalog search benchmark (issue 11, "the catalog on PostgreSQL shared by many
// servers"): loads a large generated catalog into an empty store — SQLite or
// PostgreSQL, the same code path Canopy uses — timing the load, then times
// CatalogStore::Search over a mix of query kinds. Not a test: it asserts nothing.
//
//   search_bench STORE [PRODUCTS=10000] [QUERIES=2000]
//
// STORE is a SQLite file path or a postgresql:// URL (catalog::OpenCatalog opens
// either); it must hold no products, so that runs compare. Prints the load time and,
// per query kind and overall, count, p50/p90/p99/max in ms and the median hit count.
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "catalog/catalog.h"
#include "core/error.h"

namespace fs = std::filesystem;
using namespace canopy;
using Clock = std::chrono::steady_clock;

namespace {

// --- a deterministic generator ---

// SplitMix64: tiny, fixed output for a fixed seed on every platform and standard
// library (std::uniform_int_distribution is not specified bit for bit), so every run
// loads the same catalog.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // In [0, n).
  size_t Below(size_t n) { return static_cast<size_t>(Next() % n); }
  // In [0, 1).
  double Unit() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  bool Chance(double p) { return Unit() < p; }

 private:
  uint64_t state_;
};

// Picks from a list ordered most common first with Zipf weights (1/rank), so a few
// words occur in most products and the tail in few: search terms then hit very
// different numbers of products, as in a real catalog.
class Zipf {
 public:
  explicit Zipf(const std::vector<std::string>& words) : words_(words) {
    double total = 0;
    for (size_t rank = 0; rank < words.size(); ++rank) {
      total += 1.0 / static_cast<double>(rank + 1);
      cumulative_.push_back(total);
    }
    for (double& c : cumulative_) c /= total;
  }
  const std::string& Pick(Rng& rng) const {
    const double u = rng.Unit();
    const auto at = std::lower_bound(cumulative_.begin(), cumulative_.end(), u);
    return words_[std::min(static_cast<size_t>(at - cumulative_.begin()), words_.size() - 1)];
  }

 private:
  std::vector<std::string> words_;
  std::vector<double> cumulative_;
};

// --- the business vocabulary ---

const std::vector<std::string> kDomains = {
    "sales",       "finance",    "logistics", "marketing",     "customers",     "hr",
    "procurement", "inventory",  "billing",   "support",       "catalog",       "pricing",
    "risk",        "compliance", "treasury",  "tax",           "payroll",       "ecommerce",
    "retail",      "wholesale",  "partners",  "fleet",         "manufacturing", "quality",
    "research",    "legal",      "security",  "platform",      "facilities",    "analytics",
    "growth",      "crm",        "loyalty",   "subscriptions", "payments",      "fraud",
    "returns",     "warehouse",  "transport", "merchandising"};

// Nouns, most common first.
const std::vector<std::string> kNouns = {
    "orders",     "customer",      "revenue",   "product",      "sales",       "invoice",
    "shipment",   "payment",       "margin",    "account",      "region",      "churn",
    "inventory",  "supplier",      "campaign",  "subscription", "refund",      "discount",
    "forecast",   "budget",        "ledger",    "warehouse",    "carrier",     "delivery",
    "contract",   "pricing",       "cost",      "lead",         "opportunity", "ticket",
    "employee",   "payroll",       "tax",       "currency",     "store",       "basket",
    "session",    "conversion",    "retention", "cohort",       "segment",     "promotion",
    "claim",      "backorder",     "stockout",  "freight",      "tariff",      "rebate",
    "commission", "quota",         "pipeline",  "renewal",      "upsell",      "fulfilment",
    "picking",    "replenishment", "writeoff",  "settlement",   "remittance",  "reconciliation"};

// Words that occur in about one product in a hundred (chosen with a fixed chance, not
// by Zipf): what a "rare" search finds.
const std::vector<std::string> kRareWords = {"chargeback", "dunning",      "incoterm", "demurrage",
                                             "accrual",    "amortization", "escheat",  "drawback"};

const std::vector<std::string> kMeasures = {"id",     "date",  "amount", "count", "status",
                                            "code",   "name",  "pct",    "total", "rate",
                                            "region", "score", "type",   "ts",    "qty"};

const std::vector<std::string> kTags = {"finance",   "daily",   "kpi",    "pii",
                                        "certified", "monthly", "gold",   "realtime",
                                        "eu",        "us",      "apac",   "curated",
                                        "raw",       "gdpr",    "weekly", "sox",
                                        "executive", "ml",      "latam",  "deprecated-soon"};

const std::vector<std::string> kGrains = {"daily",      "weekly",   "monthly", "by_region",
                                          "by_channel", "snapshot", "history", "current"};

const std::vector<std::string> kTypes = {"VARCHAR",   "BIGINT", "DECIMAL(18,2)", "DATE",
                                         "TIMESTAMP", "DOUBLE", "BOOLEAN"};

// --- generating the catalog ---

struct Generated {
  std::vector<catalog::DomainRecord> domains;
  std::vector<catalog::ProductRecord> products;
  std::vector<catalog::PublishedVersion> versions;
};

class Generator {
 public:
  Generator() : nouns_(kNouns), tags_(kTags), domains_(kDomains) {}

  Generated Make(int count) {
    Generated out;
    for (const std::string& d : kDomains) {
      out.domains.push_back({d, "The " + d + " domain: its teams' data products.", {d + "-lead"}});
    }
    for (int i = 0; i < count; ++i) {
      out.products.push_back(Product(i));
      out.versions.push_back(Version(out.products.back(), i));
    }
    return out;
  }

 private:
  std::string Noun() { return nouns_.Pick(rng_); }
  std::string Pick(const std::vector<std::string>& list) { return list[rng_.Below(list.size())]; }

  // A sentence of the business vocabulary; sometimes with a rare word, so rare
  // searches find something.
  std::string Sentence(const std::string& domain) {
    static const std::array<const char*, 4> kTemplates = {
        "%s and %s per %s for the %s team, reconciled with %s.",
        "Every %s with its %s, joined to %s; owned by %s, checked against %s.",
        "The %s %s by %s as %s reports it, net of %s.",
        "Tracks %s, %s and %s for %s; the source of truth for %s."};
    const std::string a = Noun(), b = Noun(), c = Noun(), e = Noun();
    char text[512];
    std::snprintf(text, sizeof text, kTemplates[rng_.Below(kTemplates.size())], a.c_str(),
                  b.c_str(), c.c_str(), domain.c_str(), e.c_str());
    std::string sentence = text;
    if (rng_.Chance(0.015)) sentence += " Includes " + Pick(kRareWords) + " adjustments.";
    return sentence;
  }

  catalog::ProductRecord Product(int i) {
    catalog::ProductRecord p;
    p.domain = domains_.Pick(rng_);
    // The index keeps names unique; the words make them searchable.
    p.name = Noun() + "_" + Noun() + "_" + std::to_string(i);
    p.version = "1." + std::to_string(rng_.Below(5)) + ".0";
    p.status = "active";
    p.type = Pick({"sourceAligned", "aggregate", "consumerAligned"});
    p.owner = p.domain + "-lead";
    p.visibility = Pick({"public", "internal", "private"});
    p.purpose = Sentence(p.domain);
    p.usage = "Join on " + Noun() + "_id; refreshed " + Pick(kGrains) + ".";
    p.limitations = rng_.Chance(0.3) ? "Excludes " + Noun() + " before 2023." : "";
    std::set<std::string> tags;
    const size_t wanted = 2 + rng_.Below(3);
    for (size_t k = 0; k < wanted; ++k) tags.insert(tags_.Pick(rng_));
    p.tags.assign(tags.begin(), tags.end());
    return p;
  }

  catalog::ColumnRecord Column(const std::string& name) {
    catalog::ColumnRecord c;
    c.name = name;
    c.type = Pick(kTypes);
    c.classification = rng_.Chance(0.1) ? "pii" : "internal";
    c.required = rng_.Chance(0.5);
    c.unique = name.ends_with("_id") && rng_.Chance(0.3);
    c.description =
        "The " + Noun() + " " + Pick(kMeasures) + (rng_.Chance(0.2) ? ", in EUR." : ".");
    return c;
  }

  catalog::PortRecord Port(const catalog::ProductRecord& p, const std::string& name,
                           const std::string& build) {
    catalog::PortRecord port;
    port.name = name;
    port.sql_name = p.domain + "." + name;
    port.description = Sentence(p.domain);
    port.path = "products/" + p.domain + "/" + p.name + "/" + build + "/" + name + ".parquet";
    port.rows = static_cast<int64_t>(rng_.Below(5'000'000));
    port.bytes = port.rows * 40;
    port.checksum = std::string(64, 'a');
    std::set<std::string> names;
    const size_t columns = 4 + rng_.Below(9);
    while (names.size() < columns) names.insert(Noun() + "_" + Pick(kMeasures));
    for (const std::string& column : names) port.columns.push_back(Column(column));
    return port;
  }

  catalog::PublishedVersion Version(const catalog::ProductRecord& p, int i) {
    catalog::PublishedVersion v;
    v.domain = p.domain;
    v.product = p.name;
    v.version = p.version;
    v.build_id = "b" + std::to_string(100000 + i);
    v.fingerprint = "fp-" + v.build_id;
    v.published_at = "2026-06-30T10:00:00Z";
    v.manifest_path = "products/" + p.domain + "/" + p.name + "/" + v.build_id + "/manifest.json";
    std::set<std::string> ports;
    const size_t wanted = 1 + rng_.Below(3);
    while (ports.size() < wanted) ports.insert(Noun() + "_" + Pick(kGrains));
    for (const std::string& name : ports) {
      v.ports.push_back(Port(p, name, v.build_id));
      // Two quality results per port, as a build records them.
      v.quality.push_back({name, v.ports.back().columns[0].name, "nullValues mustBe 0", "error",
                           true, "0", "= 0", ""});
      v.quality.push_back({name, "", "rowCount mustBeGreaterThan 0", "error", true,
                           std::to_string(v.ports.back().rows), "> 0", ""});
    }
    v.duration_ms = static_cast<int64_t>(rng_.Below(60'000));
    return v;
  }

  Rng rng_{20260630};
  Zipf nouns_;
  Zipf tags_;
  Zipf domains_;
};

// --- the queries ---

struct QueryKind {
  std::string name;
  std::vector<std::string> terms;  // drawn from in turn
};

// Each kind is a way people search: one common word, a rare one, two words (both
// required), a prefix (the store treats the last word as one: results follow typing),
// and a word that is nowhere.
std::vector<QueryKind> QueryKinds() {
  return {
      {"common word", {"orders", "revenue", "margin", "churn", "invoice"}},
      {"rare word", kRareWords},
      {"two words",
       {"churn margin", "invoice payment", "shipment carrier", "customer retention",
        "revenue forecast", "refund discount", "supplier contract", "campaign conversion"}},
      {"prefix", {"rev", "cust", "ship", "inv", "marg", "subscr", "replen", "fulf"}},
      {"no hit", {"zeppelin", "quasar", "marmalade", "xylophone", "kraken"}},
  };
}

struct Timing {
  std::vector<double> ms;
  std::vector<double> hits;     // what Search returned (at most the limit)
  std::vector<double> matches;  // every product the term matches
};

double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  // Nearest rank: the smallest value with at least p of the values at or below it.
  const auto rank = static_cast<size_t>(std::ceil(p * static_cast<double>(values.size())));
  return values[std::clamp<size_t>(rank, 1, values.size()) - 1];
}

double Millis(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

void PrintRow(const std::string& name, const Timing& t) {
  std::printf("%-14s %7zu %9.3f %9.3f %9.3f %9.3f %7.0f %9.0f\n", name.c_str(), t.ms.size(),
              Percentile(t.ms, 0.5), Percentile(t.ms, 0.9), Percentile(t.ms, 0.99),
              Percentile(t.ms, 1.0), Percentile(t.hits, 0.5), Percentile(t.matches, 0.5));
}

// --- running ---

// Whether the catalog holds no products or versions; says why not. A load into a
// store that has some would time a different thing than a load into an empty one.
bool Empty(const catalog::CatalogInfo& info) {
  for (const auto& [kind, count] : info.counts) {
    if ((kind == "products" || kind == "versions") && count > 0) {
      std::fprintf(stderr,
                   "search_bench: the catalog %s holds %lld %s already; give it an empty one "
                   "(a new SQLite file, or a new PostgreSQL schema) so runs compare\n",
                   info.location.c_str(), static_cast<long long>(count), kind.c_str());
      return false;
    }
  }
  return true;
}

void Load(catalog::CatalogStore& store, const Generated& data) {
  auto start = Clock::now();
  store.SyncSpec(data.domains, data.products);
  const double sync_s = Millis(start) / 1000;
  std::vector<double> publish_ms;
  start = Clock::now();
  for (const auto& version : data.versions) {
    const auto one = Clock::now();
    store.Publish(version);
    publish_ms.push_back(Millis(one));
  }
  const double publish_s = Millis(start) / 1000;
  size_t ports = 0;
  size_t columns = 0;
  for (const auto& v : data.versions) {
    ports += v.ports.size();
    for (const auto& p : v.ports) columns += p.columns.size();
  }
  std::printf("load: %zu products in %zu domains, %zu ports, %zu columns\n", data.products.size(),
              data.domains.size(), ports, columns);
  std::printf("  SyncSpec (one call)   %8.2f s\n", sync_s);
  std::printf(
      "  Publish (one each)    %8.2f s  = %.0f/s; per publish p50 %.2f ms, p99 %.2f ms, "
      "max %.2f ms\n",
      publish_s, static_cast<double>(data.versions.size()) / publish_s, Percentile(publish_ms, 0.5),
      Percentile(publish_ms, 0.99), Percentile(publish_ms, 1.0));
}

// How many products each term matches in all (Search with no practical limit).
// Untimed; it also warms the store's caches for every term before timing starts.
std::map<std::string, size_t> CountMatches(catalog::CatalogStore& store,
                                           const std::vector<QueryKind>& kinds, int products) {
  std::map<std::string, size_t> matches;
  for (const auto& kind : kinds) {
    for (const auto& term : kind.terms) matches[term] = store.Search(term, products + 1).size();
  }
  return matches;
}

void RunQueries(catalog::CatalogStore& store, int queries, int products) {
  const std::vector<QueryKind> kinds = QueryKinds();
  const std::map<std::string, size_t> matches = CountMatches(store, kinds, products);
  std::vector<Timing> timings(kinds.size());
  Timing all;
  Rng rng(7);
  // Kinds take turns, so a disturbance from other processes spreads over all of them.
  for (int q = 0; q < queries; ++q) {
    const size_t k = static_cast<size_t>(q) % kinds.size();
    const std::string& term = kinds[k].terms[rng.Below(kinds[k].terms.size())];
    const auto start = Clock::now();
    const auto hits = store.Search(term, 20);
    const double ms = Millis(start);
    for (Timing* t : {&timings[k], &all}) {
      t->ms.push_back(ms);
      t->hits.push_back(static_cast<double>(hits.size()));
      t->matches.push_back(static_cast<double>(matches.at(term)));
    }
  }
  std::printf("\nsearch: %d queries, Search(text, 20), one connection, kinds in turn\n", queries);
  std::printf("%-14s %7s %9s %9s %9s %9s %7s %9s\n", "kind", "count", "p50 ms", "p90 ms", "p99 ms",
              "max ms", "hits", "matches");
  for (size_t k = 0; k < kinds.size(); ++k) PrintRow(kinds[k].name, timings[k]);
  PrintRow("overall", all);
  std::printf(
      "hits = median results returned (limit 20); matches = median products the term "
      "matches in all\n");
  std::printf("terms:");
  for (const auto& [term, count] : matches) std::printf(" %s=%zu", term.c_str(), count);
  std::printf("\n");
}

int Usage() {
  std::fprintf(stderr,
               "usage: search_bench STORE [PRODUCTS=10000] [QUERIES=2000]\n"
               "  STORE: a SQLite file path or a postgresql:// URL; the catalog must be empty\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argc > 4) return Usage();
  const int products = argc > 2 ? std::atoi(argv[2]) : 10000;
  const int queries = argc > 3 ? std::atoi(argv[3]) : 2000;
  if (products < 1 || queries < 1) return Usage();
  // A PostgreSQL catalog keeps its audit key in the storage root; the benchmark never
  // audits, but give it a folder of its own, removed at the end.
  char folder_template[] = "/tmp/search-bench-seal.XXXXXX";
  if (::mkdtemp(folder_template) == nullptr) {
    std::perror("search_bench: mkdtemp");
    return 1;
  }
  const fs::path seal_folder = folder_template;
  int status = 0;
  try {
    auto store = catalog::OpenCatalog(argv[1], seal_folder.string());
    const catalog::CatalogInfo info = store->Info();
    if (!Empty(info)) {
      fs::remove_all(seal_folder);
      return 2;
    }
    std::printf("search benchmark on %s: %s (schema v%d); %ld cores\n", info.store.c_str(),
                info.location.c_str(), info.schema_version, ::sysconf(_SC_NPROCESSORS_ONLN));
    Load(*store, Generator().Make(products));
    RunQueries(*store, queries, products);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "search_bench: %s\n", e.what());
    status = 1;
  }
  fs::remove_all(seal_folder);
  return status;
}
