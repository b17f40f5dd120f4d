// Registration (name validation, clash detection) and the exposition loop.
#include <algorithm>
#include <stdexcept>

#include "metrics/text_format.hpp"
#include "vigil/telemetry/metrics.hpp"

namespace vigil::telemetry {
namespace {

constexpr std::string_view kOverflowFamily = "vigil_metrics_overflow_total";
constexpr std::string_view kOverflowHelp =
    "Lookups of a new label set redirected to the _overflow series because the family "
    "reached its series limit.";

bool IsCounterName(std::string_view name) noexcept {
  return name.size() > 6 && name.ends_with("_total");
}

// Every name a family may print or be known by in either format. OpenMetrics forbids a
// family whose name could clash with another family's sample names (a gauge `x_count`
// next to a histogram `x`), and a counter `x_total` is family `x` there.
std::vector<std::string> ClaimedNames(MetricType type, std::string_view name) {
  std::vector<std::string> names;
  switch (type) {
    case MetricType::kCounter: {
      const std::string base(internal::CounterBaseName(name));
      names = {std::string(name), base, base + "_created"};
      break;
    }
    case MetricType::kGauge:
      names = {std::string(name)};
      break;
    case MetricType::kHistogram: {
      const std::string n(name);
      names = {n, n + "_bucket", n + "_sum", n + "_count", n + "_created"};
      break;
    }
  }
  return names;
}

[[noreturn]] void Reject(std::string_view name, std::string_view why) {
  throw std::invalid_argument("metrics: " + std::string(name) + ": " + std::string(why));
}

void ValidateNames(MetricType type, std::string_view name,
                   const std::vector<std::string>& label_names) {
  if (!internal::IsValidMetricName(name)) {
    Reject(name, "invalid metric name");
  }
  if (internal::IsReservedName(name)) {
    Reject(name, "names starting with __ are reserved");
  }
  if (type == MetricType::kCounter && !IsCounterName(name)) {
    Reject(name, "counter names must end in _total");
  }
  for (std::size_t i = 0; i < label_names.size(); ++i) {
    const std::string& label = label_names[i];
    if (!internal::IsValidLabelName(label)) {
      Reject(name, "invalid label name '" + label + "'");
    }
    if (internal::IsReservedName(label)) {
      Reject(name, "label '" + label + "' is reserved (__)");
    }
    if (type == MetricType::kHistogram && label == "le") {
      Reject(name, "histograms cannot have an 'le' label");
    }
    if (std::find(label_names.begin(), label_names.begin() + static_cast<std::ptrdiff_t>(i),
                  label) != label_names.begin() + static_cast<std::ptrdiff_t>(i)) {
      Reject(name, "duplicate label name '" + label + "'");
    }
  }
}

}  // namespace

// ---- MetricWriter ----

void MetricWriter::Counter(std::string_view name, std::string_view help,
                           std::initializer_list<Label> labels, double value) {
  Sample(MetricType::kCounter, name, help, {labels.begin(), labels.size()}, value);
}
void MetricWriter::Counter(std::string_view name, std::string_view help,
                           std::span<const Label> labels, double value) {
  Sample(MetricType::kCounter, name, help, labels, value);
}
void MetricWriter::Gauge(std::string_view name, std::string_view help,
                         std::initializer_list<Label> labels, double value) {
  Sample(MetricType::kGauge, name, help, {labels.begin(), labels.size()}, value);
}
void MetricWriter::Gauge(std::string_view name, std::string_view help,
                         std::span<const Label> labels, double value) {
  Sample(MetricType::kGauge, name, help, labels, value);
}

void MetricWriter::Sample(MetricType type, std::string_view name, std::string_view help,
                          std::span<const Label> labels, double value) {
  if (!internal::IsValidMetricName(name) || internal::IsReservedName(name)) {
    return;
  }
  if (type == MetricType::kCounter && !IsCounterName(name)) {
    return;
  }
  for (const Label& l : labels) {
    if (!internal::IsValidLabelName(l.name) || internal::IsReservedName(l.name)) {
      return;
    }
  }
  if (name != family_ || type != family_type_) {
    internal::AppendFamilyHeader(out_, name, help, type, format_);
    family_.assign(name);
    family_type_ = type;
  }
  out_ += name;
  if (!labels.empty()) {
    out_ += '{';
    for (std::size_t i = 0; i < labels.size(); ++i) {
      if (i > 0) {
        out_ += ',';
      }
      out_ += labels[i].name;
      out_ += "=\"";
      internal::AppendLabelValue(out_, labels[i].value);
      out_ += '"';
    }
    out_ += '}';
  }
  out_ += ' ';
  internal::AppendValue(out_, value);
  out_ += '\n';
}

// ---- Registry ----

Registry::Registry() {
  for (auto& n : ClaimedNames(MetricType::kCounter, kOverflowFamily)) {
    claimed_.emplace(n, nullptr);
  }
}

Registry::~Registry() = default;

internal::FamilyBase& Registry::Register(MetricType type, std::string name, std::string help,
                                         std::vector<std::string> label_names,
                                         std::span<const double> buckets, FamilyOptions options) {
  ValidateNames(type, name, label_names);
  std::unique_lock lock(mu_);
  if (auto it = claimed_.find(name); it != claimed_.end()) {
    internal::FamilyBase* existing = it->second;
    if (existing == nullptr) {
      Reject(name, "name is reserved");
    }
    if (existing->name() == name && existing->SameShape(type, label_names, buckets)) {
      return *existing;
    }
    Reject(name, "conflicts with the registered family " + existing->name());
  }
  const std::vector<std::string> claims = ClaimedNames(type, name);
  for (const auto& c : claims) {
    if (auto it = claimed_.find(c); it != claimed_.end()) {
      Reject(name, it->second == nullptr
                       ? std::string("name is reserved")
                       : "conflicts with the registered family " + it->second->name());
    }
  }
  std::unique_ptr<internal::FamilyBase> family;
  switch (type) {
    case MetricType::kCounter:
      family.reset(new Family<Counter>(type, std::move(name), std::move(help),
                                       std::move(label_names), buckets, options));
      break;
    case MetricType::kGauge:
      family.reset(new Family<Gauge>(type, std::move(name), std::move(help), std::move(label_names),
                                     buckets, options));
      break;
    case MetricType::kHistogram:
      family.reset(new Family<Histogram>(type, std::move(name), std::move(help),
                                         std::move(label_names), buckets, options));
      break;
  }
  families_.reserve(families_.size() + 1);
  for (const auto& c : claims) {
    claimed_.emplace(c, family.get());
  }
  families_.push_back(std::move(family));
  return *families_.back();
}

Family<Counter>& Registry::CounterFamily(std::string name, std::string help,
                                         std::vector<std::string> label_names,
                                         FamilyOptions options) {
  return static_cast<Family<Counter>&>(Register(
      MetricType::kCounter, std::move(name), std::move(help), std::move(label_names), {}, options));
}

Family<Gauge>& Registry::GaugeFamily(std::string name, std::string help,
                                     std::vector<std::string> label_names, FamilyOptions options) {
  return static_cast<Family<Gauge>&>(Register(MetricType::kGauge, std::move(name), std::move(help),
                                              std::move(label_names), {}, options));
}

Family<Histogram>& Registry::HistogramFamily(std::string name, std::string help,
                                             std::vector<std::string> label_names,
                                             std::span<const double> buckets,
                                             FamilyOptions options) {
  return static_cast<Family<Histogram>&>(Register(MetricType::kHistogram, std::move(name),
                                                  std::move(help), std::move(label_names), buckets,
                                                  options));
}

Counter& Registry::AddCounter(std::string name, std::string help) {
  return CounterFamily(std::move(name), std::move(help), {}).WithLabels({});
}

Gauge& Registry::AddGauge(std::string name, std::string help) {
  return GaugeFamily(std::move(name), std::move(help), {}).WithLabels({});
}

Histogram& Registry::AddHistogram(std::string name, std::string help,
                                  std::span<const double> buckets) {
  return HistogramFamily(std::move(name), std::move(help), {}, buckets).WithLabels({});
}

void Registry::AddCollector(std::function<void(MetricWriter&)> collect) {
  auto owned = std::make_unique<std::function<void(MetricWriter&)>>(std::move(collect));
  std::unique_lock lock(mu_);
  collectors_.push_back(std::move(owned));
}

bool Registry::AddCollector(std::string key, std::function<void(MetricWriter&)> collect) {
  auto owned = std::make_unique<std::function<void(MetricWriter&)>>(std::move(collect));
  std::unique_lock lock(mu_);
  if (std::find(collector_keys_.begin(), collector_keys_.end(), key) != collector_keys_.end()) {
    return false;
  }
  collector_keys_.reserve(collector_keys_.size() + 1);
  collectors_.push_back(std::move(owned));
  collector_keys_.push_back(std::move(key));
  return true;
}

void Registry::Expose(ExpositionFormat format, std::string& out) const {
  MetricWriter writer(format, out);
  std::vector<const std::function<void(MetricWriter&)>*> collectors;
  {
    std::shared_lock lock(mu_);
    for (const auto& family : families_) {
      family->Write(format, out);
    }
    for (const auto& family : families_) {
      if (const std::uint64_t n = family->overflowed(); n > 0) {
        writer.Counter(kOverflowFamily, kOverflowHelp, {{"metric", family->name()}},
                       static_cast<double>(n));
      }
    }
    collectors.reserve(collectors_.size());
    for (const auto& c : collectors_) {
      collectors.push_back(c.get());
    }
  }
  // Collectors are never removed, so the pointers stay valid without the lock; calling
  // them unlocked keeps a slow collector from blocking registrations.
  for (const auto* collect : collectors) {
    (*collect)(writer);
  }
  if (format == ExpositionFormat::kOpenMetrics) {
    out += "# EOF\n";
  }
}

std::string Registry::Expose(ExpositionFormat format) const {
  std::string out;
  Expose(format, out);
  return out;
}

}  // namespace vigil::telemetry
