// Label-set lookup and exposition of one family.
//
// Lookup is an open-addressing table of atomic series pointers, read lock-free with
// acquire loads and written under the family mutex. The table is kept at most half full
// and grows by doubling; a replaced table stays allocated until the family dies because
// a lock-free reader may still be probing it.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "metrics/arena.hpp"
#include "metrics/exemplar.hpp"
#include "metrics/text_format.hpp"
#include "vigil/telemetry/metrics.hpp"

namespace vigil::telemetry::internal {

struct Series {
  std::uint64_t hash = 0;
  std::string key;     // each label value as a 4-byte length and its bytes
  std::string labels;  // `a="x",b="y"`, escaped once here instead of at every scrape
  void* metric = nullptr;
  SlotRange slots{0, 0};
};

struct SeriesTable {
  explicit SeriesTable(std::size_t capacity)
      : mask(capacity - 1), entries(new std::atomic<Series*>[capacity]()) {}
  std::size_t capacity() const noexcept { return mask + 1; }

  std::size_t mask;
  std::unique_ptr<std::atomic<Series*>[]> entries;
  std::size_t used = 0;  // written under the family mutex
};

namespace {

constexpr std::string_view kOverflowValue = "_overflow";

std::uint64_t Load64(const char* p) noexcept {
  std::uint64_t w;
  std::memcpy(&w, p, 8);
  return w;
}
std::uint64_t Load32(const char* p) noexcept {
  std::uint32_t w;
  std::memcpy(&w, p, 4);
  return w;
}

// 64x64 -> 128-bit multiply folded to 64 bits: one instruction of good mixing.
std::uint64_t Fold(std::uint64_t a, std::uint64_t b) noexcept {
  __extension__ using U128 = unsigned __int128;
  const U128 r = static_cast<U128>(a) * b;
  return static_cast<std::uint64_t>(r) ^ static_cast<std::uint64_t>(r >> 64);
}

constexpr std::uint64_t kK0 = 0xa0761d6478bd642full;
constexpr std::uint64_t kK1 = 0xe7037ed1a0b428dbull;

// Label values are short (methods, routes, status codes): up to 16 bytes are read as at
// most four fixed-size, possibly overlapping loads, with no loop and no memcpy call.
std::uint64_t HashValue(std::string_view v) noexcept {
  const char* p = v.data();
  const std::size_t n = v.size();
  std::uint64_t seed = kK0 ^ n;
  std::uint64_t a = 0;
  std::uint64_t b = 0;
  if (n >= 4 && n <= 16) {
    const std::size_t mid = (n >> 3) << 2;  // 0 for n < 8, 4 for n >= 8
    a = (Load32(p) << 32) | Load32(p + mid);
    b = (Load32(p + n - 4) << 32) | Load32(p + n - 4 - mid);
  } else if (n > 0 && n < 4) {
    a = (static_cast<std::uint64_t>(static_cast<unsigned char>(p[0])) << 16) |
        (static_cast<std::uint64_t>(static_cast<unsigned char>(p[n >> 1])) << 8) |
        static_cast<unsigned char>(p[n - 1]);
  } else if (n > 16) {
    std::size_t left = n;
    for (; left > 16; p += 16, left -= 16) {
      seed = Fold(Load64(p) ^ kK1, Load64(p + 8) ^ seed);
    }
    a = Load64(p + left - 16);  // the last 16 bytes, overlapping what was consumed
    b = Load64(p + left - 8);
  }
  return Fold(a ^ kK1, b ^ seed);
}

std::uint64_t HashValues(std::span<const std::string_view> values) noexcept {
  // Values hash independently (their multiplies overlap in the pipeline); the cheap
  // order-sensitive combination keeps {"a","b"} and {"b","a"} apart.
  std::uint64_t h = kK1;
  for (std::string_view v : values) {
    h = ((h << 23) | (h >> 41)) ^ HashValue(v);
  }
  return Fold(h, kK0);
}

// Equality of n bytes with fixed-size loads for short values (see HashValue).
bool SameBytes(const char* a, const char* b, std::size_t n) noexcept {
  if (n >= 8 && n <= 16) {
    return ((Load64(a) ^ Load64(b)) | (Load64(a + n - 8) ^ Load64(b + n - 8))) == 0;
  }
  if (n >= 4 && n < 8) {
    return ((Load32(a) ^ Load32(b)) | (Load32(a + n - 4) ^ Load32(b + n - 4))) == 0;
  }
  if (n < 4) {
    for (std::size_t i = 0; i < n; ++i) {
      if (a[i] != b[i]) {
        return false;
      }
    }
    return true;
  }
  return std::memcmp(a, b, n) == 0;
}

bool KeyMatches(const std::string& key, std::span<const std::string_view> values) noexcept {
  const char* p = key.data();
  const char* const end = p + key.size();
  for (std::string_view v : values) {
    std::uint32_t len;
    if (end - p < 4) {
      return false;
    }
    std::memcpy(&len, p, 4);
    p += 4;
    if (len != v.size() || static_cast<std::size_t>(end - p) < len) {
      return false;
    }
    if (!SameBytes(p, v.data(), len)) {
      return false;
    }
    p += len;
  }
  return p == end;
}

Series* Find(const SeriesTable* table, std::uint64_t hash,
             std::span<const std::string_view> values) noexcept {
  if (table == nullptr) {
    return nullptr;
  }
  for (std::size_t i = hash & table->mask;; i = (i + 1) & table->mask) {
    Series* s = table->entries[i].load(std::memory_order_acquire);
    if (s == nullptr) {
      return nullptr;
    }
    if (s->hash == hash && KeyMatches(s->key, values)) {
      return s;
    }
  }
}

void Place(SeriesTable& table, Series* s) noexcept {
  std::size_t i = s->hash & table.mask;
  while (table.entries[i].load(std::memory_order_relaxed) != nullptr) {
    i = (i + 1) & table.mask;
  }
  table.entries[i].store(s, std::memory_order_release);
  ++table.used;
}

std::vector<double> PaddedBounds(std::span<const double> buckets) {
  std::vector<double> bounds(buckets.begin(), buckets.end());
  // +Inf is implicit: accept a trailing one and drop it.
  if (!bounds.empty() && bounds.back() == HUGE_VAL) {
    bounds.pop_back();
  }
  for (std::size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i])) {
      throw std::invalid_argument("metrics: histogram bucket bounds must be finite");
    }
    if (i > 0 && !(bounds[i] > bounds[i - 1])) {
      throw std::invalid_argument("metrics: histogram bucket bounds must increase strictly");
    }
  }
  if (bounds.size() + 2 > kChunkSlots) {
    throw std::invalid_argument("metrics: too many histogram buckets");
  }
  return bounds;
}

}  // namespace

FamilyBase::FamilyBase(MetricType type, std::string name, std::string help,
                       std::vector<std::string> label_names, std::span<const double> buckets,
                       FamilyOptions options)
    : type_(type),
      name_(std::move(name)),
      help_(std::move(help)),
      label_names_(std::move(label_names)),
      options_(options) {
  if (options_.max_series == 0) {
    throw std::invalid_argument("metrics: max_series must be > 0");
  }
  if (type_ == MetricType::kHistogram) {
    bounds_ = PaddedBounds(buckets);
    bound_count_ = static_cast<std::uint32_t>(bounds_.size());
    for (double b : bounds_) {
      AppendGoFloat(text_le_.emplace_back(), b);
      AppendCanonicalFloat(om_le_.emplace_back(), b);
    }
    text_le_.emplace_back("+Inf");
    om_le_.emplace_back("+Inf");
    if (bounds_.size() % 2 != 0) {
      bounds_.push_back(HUGE_VAL);  // BucketFor reads pairs
    }
  }
  AppendFamilyHeader(text_header_, name_, help_, type_, ExpositionFormat::kPrometheusText);
  AppendFamilyHeader(om_header_, name_, help_, type_, ExpositionFormat::kOpenMetrics);
  tables_.push_back(std::make_unique<SeriesTable>(8));
  table_.store(tables_.back().get(), std::memory_order_release);
}

FamilyBase::~FamilyBase() {
  std::vector<SlotRange> ranges;
  ranges.reserve(series_.size());
  for (const auto& s : series_) {
    if (s->slots.count != 0) {
      ranges.push_back(s->slots);
    }
    DeleteMetric(s->metric);
  }
  ReleaseSlots(ranges);
}

bool FamilyBase::SameShape(MetricType type, const std::vector<std::string>& label_names,
                           std::span<const double> buckets) const {
  if (type != type_ || label_names != label_names_) {
    return false;
  }
  if (type != MetricType::kHistogram) {
    return true;
  }
  const std::vector<double> other = PaddedBounds(buckets);
  return std::equal(other.begin(), other.end(), bounds_.begin(), bounds_.begin() + bound_count_) &&
         other.size() == bound_count_;
}

void* FamilyBase::Lookup(std::span<const std::string_view> values) {
  if (values.size() != label_names_.size()) {
    throw std::invalid_argument("metrics: " + name_ + " takes " +
                                std::to_string(label_names_.size()) + " label values");
  }
  const std::uint64_t hash = HashValues(values);
  if (Series* s = Find(table_.load(std::memory_order_acquire), hash, values)) {
    return s->metric;
  }
  return LookupSlow(values, hash);
}

void* FamilyBase::LookupSlow(std::span<const std::string_view> values, std::uint64_t hash) {
  if (full_.load(std::memory_order_acquire)) {
    // No insert can happen any more, so a miss is final without taking the lock.
    overflowed_.fetch_add(1, std::memory_order_relaxed);
    return overflow_->metric;
  }
  std::lock_guard lock(mu_);
  if (Series* s = Find(table_.load(std::memory_order_relaxed), hash, values)) {
    return s->metric;
  }
  if (series_.size() < options_.max_series) {
    return Insert(values, hash)->metric;
  }

  const std::vector<std::string_view> overflow_values(label_names_.size(), kOverflowValue);
  const std::uint64_t overflow_hash = HashValues(overflow_values);
  Series* overflow = Find(table_.load(std::memory_order_relaxed), overflow_hash, overflow_values);
  if (overflow == nullptr) {
    overflow = Insert(overflow_values, overflow_hash);
  }
  overflow_ = overflow;
  full_.store(true, std::memory_order_release);
  overflowed_.fetch_add(1, std::memory_order_relaxed);
  return overflow->metric;
}

Series* FamilyBase::Insert(std::span<const std::string_view> values, std::uint64_t hash) {
  auto s = std::make_unique<Series>();
  s->hash = hash;
  for (std::size_t i = 0; i < values.size(); ++i) {
    const auto len = static_cast<std::uint32_t>(values[i].size());
    s->key.append(reinterpret_cast<const char*>(&len), 4);
    s->key.append(values[i]);
    if (i > 0) {
      s->labels += ',';
    }
    s->labels += label_names_[i];
    s->labels += "=\"";
    AppendLabelValue(s->labels, values[i]);
    s->labels += '"';
  }

  SeriesTable* table = tables_.back().get();
  if ((table->used + 1) * 2 > table->capacity()) {
    auto bigger = std::make_unique<SeriesTable>(table->capacity() * 2);
    for (const auto& existing : series_) {
      Place(*bigger, existing.get());
    }
    tables_.push_back(std::move(bigger));
    table = tables_.back().get();
  }
  series_.reserve(series_.size() + 1);

  // Everything that can throw is done; the metric is created last so that nothing leaks.
  s->metric = NewMetric();
  switch (type_) {
    case MetricType::kCounter:
      s->slots = {static_cast<Counter*>(s->metric)->slot_, 2};
      break;
    case MetricType::kHistogram:
      s->slots = {static_cast<Histogram*>(s->metric)->base_slot_, bound_count_ + 2};
      break;
    case MetricType::kGauge:
      break;
  }
  Series* raw = s.get();
  series_.push_back(std::move(s));
  Place(*table, raw);
  table_.store(table, std::memory_order_release);
  return raw;
}

void* FamilyBase::NewMetric() {
  switch (type_) {
    case MetricType::kCounter: {
      const std::uint32_t slot = AllocateSlots(2);
      try {
        return new Counter(slot);
      } catch (...) {
        const SlotRange range{slot, 2};
        ReleaseSlots({&range, 1});
        throw;
      }
    }
    case MetricType::kGauge:
      return new Gauge();
    case MetricType::kHistogram: {
      const std::uint32_t base = AllocateSlots(bound_count_ + 2);
      try {
        return new Histogram(base, bounds_.data(), bound_count_);
      } catch (...) {
        const SlotRange range{base, bound_count_ + 2};
        ReleaseSlots({&range, 1});
        throw;
      }
    }
  }
  return nullptr;
}

void FamilyBase::DeleteMetric(void* metric) noexcept {
  switch (type_) {
    case MetricType::kCounter:
      delete static_cast<Counter*>(metric);
      break;
    case MetricType::kGauge:
      delete static_cast<Gauge*>(metric);
      break;
    case MetricType::kHistogram:
      delete static_cast<Histogram*>(metric);
      break;
  }
}

void FamilyBase::Write(ExpositionFormat format, std::string& out) const {
  const bool om = format == ExpositionFormat::kOpenMetrics;
  std::lock_guard lock(mu_);
  out += om ? om_header_ : text_header_;
  if (series_.empty()) {
    return;
  }

  const auto sample_start = [&](std::string_view suffix, const Series& s) {
    out += name_;
    out += suffix;
    if (!s.labels.empty()) {
      out += '{';
      out += s.labels;
      out += '}';
    }
    out += ' ';
  };

  switch (type_) {
    case MetricType::kGauge:
      for (const auto& s : series_) {
        sample_start({}, *s);
        AppendValue(out, static_cast<const Gauge*>(s->metric)->Value());
        out += '\n';
      }
      return;
    case MetricType::kCounter: {
      ArenaReader reader;
      for (const auto& s : series_) {
        const auto* c = static_cast<const Counter*>(s->metric);
        sample_start({}, *s);
        AppendValue(out, reader.CounterTotal(c->slot_));
        if (om) {
          if (auto e = LoadExemplar(c->exemplar_, 0)) {
            AppendExemplar(out, *e);
          }
        }
        out += '\n';
      }
      return;
    }
    case MetricType::kHistogram:
      break;
  }

  // Negative bounds make the sum no counter; OpenMetrics then forbids _sum (and _count).
  const bool write_sum = !om || bound_count_ == 0 || bounds_[0] >= 0;
  std::vector<std::uint64_t> counts(bound_count_ + 1u);
  ArenaReader reader;
  for (const auto& s : series_) {
    const auto* h = static_cast<const Histogram*>(s->metric);
    std::fill(counts.begin(), counts.end(), 0);
    double sum = 0;
    reader.ForEach(h->base_slot_, [&](const Slot* slot) {
      sum += std::bit_cast<double>(slot[0].load(std::memory_order_relaxed));
      for (std::uint32_t i = 0; i <= bound_count_; ++i) {
        counts[i] += slot[1 + i].load(std::memory_order_relaxed);
      }
    });
    const bool with_exemplars = om && h->exemplars_.load(std::memory_order_acquire) != nullptr;
    const auto& le = om ? om_le_ : text_le_;
    std::uint64_t cumulative = 0;
    for (std::uint32_t i = 0; i <= bound_count_; ++i) {
      cumulative += counts[i];
      out += name_;
      out += "_bucket{";
      if (!s->labels.empty()) {
        out += s->labels;
        out += ',';
      }
      out += "le=\"";
      out += le[i];
      out += "\"} ";
      AppendValue(out, cumulative);
      if (with_exemplars) {
        if (auto e = LoadExemplar(h->exemplars_, i)) {
          AppendExemplar(out, *e);
        }
      }
      out += '\n';
    }
    if (write_sum) {
      sample_start("_sum", *s);
      AppendValue(out, sum);
      out += '\n';
      sample_start("_count", *s);
      AppendValue(out, cumulative);
      out += '\n';
    }
  }
}

}  // namespace vigil::telemetry::internal
