// Prometheus-style metrics: counters, gauges and histograms, grouped in labelled
// families held by a Registry that renders them as Prometheus text 0.0.4 or
// OpenMetrics 1.0 (with exemplars) for a `/metrics` endpoint.
//
// Use it for every number a service reports about itself. Look a labelled child up
// once (at start-up or per route) and keep the reference: updates on a kept reference
// are a few nanoseconds, never lock and never allocate.
//
//   Registry registry;
//   auto& requests = registry.CounterFamily("app_requests_total", "Requests.", {"route"});
//   Counter& items = requests.WithLabels({"/items"});   items.Inc();
//
// How updates scale: a counter or histogram has no shared value. Each thread adds into
// its own arena of 8-byte slots (a relaxed load, an add and a relaxed store on memory no
// other thread writes); a scrape sums the slot over every thread's arena. Arenas of
// threads that exit are kept and handed to the next new thread, so values survive thread
// exit without any folding. Gauges are one shared atomic because Set() must be
// last-writer-wins.
//
// Thread-safety: stated on each class; the plain structs (Exemplar, HistogramSnapshot,
// FamilyOptions, Negotiation) are values, safe to use from any thread once made.
#pragma once

#include <array>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "vigil/telemetry/context.hpp"
#include "vigil/telemetry/internal/metrics_arena.hpp"

namespace vigil::telemetry {

// The duration buckets (seconds) of the wire conventions, for every duration histogram.
inline constexpr std::array<double, 14> kDurationBuckets = {
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10};

class Registry;
template <class M>
class Family;
namespace internal {
struct ExemplarCell;
class FamilyBase;
}  // namespace internal

// The latest exemplar kept for a counter or a histogram bucket.
struct Exemplar {
  double value = 0;
  std::int64_t unix_nanos = 0;  // wall clock when it was recorded
  TraceId trace_id;
  SpanId span_id;
};

// A monotonically increasing value (`*_total`).
// Thread-safety: all methods may be called concurrently from any number of threads.
class Counter {
 public:
  Counter(const Counter&) = delete;
  Counter& operator=(const Counter&) = delete;
  ~Counter();

  // Adds `v`. Negative and NaN increments are ignored: a counter only goes up.
  void Inc(double v = 1) noexcept {
    // Unit steps go to an integer slot: an integer add keeps the load-add-store chain
    // short when one thread increments the same counter back to back.
    if (v == 1) {
      internal::AddOne(internal::LocalSlot(slot_) + 1);
    } else if (v >= 0) {
      internal::AddDouble(internal::LocalSlot(slot_), v);
    }
  }
  // Adds `v` and, when `exemplar` is valid and sampled, keeps it as the counter's
  // exemplar (best effort: a writer that races another one skips).
  void Inc(double v, const SpanContext& exemplar) noexcept;

  // The sum over all threads. Takes the arena lock: meant for scrapes and tests.
  double Value() const noexcept;
  std::optional<Exemplar> LatestExemplar() const noexcept;

 private:
  friend class internal::FamilyBase;
  explicit Counter(std::uint32_t slot) noexcept : slot_(slot) {}

  std::uint32_t slot_;  // [sum of other increments (double bits)][count of unit steps]
  std::atomic<internal::ExemplarCell*> exemplar_{nullptr};
};

// A value that goes up and down. One shared atomic per gauge, on its own cache line.
// Thread-safety: all methods may be called concurrently; concurrent Set() calls are
// last-writer-wins.
class alignas(64) Gauge {
 public:
  Gauge(const Gauge&) = delete;
  Gauge& operator=(const Gauge&) = delete;

  void Set(double v) noexcept { value_.store(v, std::memory_order_relaxed); }
  void Inc(double v = 1) noexcept { value_.fetch_add(v, std::memory_order_relaxed); }
  void Dec(double v = 1) noexcept { value_.fetch_sub(v, std::memory_order_relaxed); }
  double Value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  friend class internal::FamilyBase;
  Gauge() = default;

  std::atomic<double> value_{0};
};

// A point-in-time copy of a histogram, for tests and diagnostics.
struct HistogramSnapshot {
  std::vector<double> upper_bounds;       // without the implicit +Inf
  std::vector<std::uint64_t> cumulative;  // upper_bounds.size() + 1 entries, last = +Inf
  std::uint64_t count = 0;                // equals cumulative.back()
  double sum = 0;
};

// Counts observations in fixed buckets and sums them. A value v falls in the first
// bucket whose upper bound b has v <= b; NaN falls in +Inf.
// Thread-safety: all methods may be called concurrently from any number of threads.
class Histogram {
 public:
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;
  ~Histogram();

  void Observe(double v) noexcept { Record(v, BucketFor(v)); }
  // Observes `v` and, when `exemplar` is valid and sampled, keeps it as the exemplar of
  // the bucket `v` fell in (best effort, as for Counter).
  void Observe(double v, const SpanContext& exemplar) noexcept;

  // Sums over all threads; takes the arena lock. Count and buckets come from one pass,
  // so count == cumulative.back() always.
  HistogramSnapshot Snapshot() const;
  std::uint64_t Count() const { return Snapshot().count; }
  double Sum() const { return Snapshot().sum; }
  // The exemplar of bucket `bucket` (0-based; upper_bounds.size() is +Inf), if any.
  std::optional<Exemplar> LatestExemplar(std::size_t bucket) const noexcept;

 private:
  friend class internal::FamilyBase;
  Histogram(std::uint32_t base_slot, const double* padded_bounds, std::uint32_t bound_count)
      : base_slot_(base_slot), bound_count_(bound_count), bounds_(padded_bounds) {}

  // Branch-free: the index is the number of bounds below v, so a stream of values
  // spread over the buckets costs no mispredicted branches.
  std::uint32_t BucketFor(double v) const noexcept {
    if (v != v) {
      return bound_count_;  // NaN counts in +Inf
    }
#if defined(__GNUC__)
    using V2 = double __attribute__((vector_size(16)));
    using I2 = long long __attribute__((vector_size(16)));
    const V2 vv = {v, v};
    I2 below = {0, 0};
    // bounds_ is padded with +Inf to an even count; v > +Inf is never true.
    for (std::uint32_t i = 0; i < bound_count_; i += 2) {
      V2 b;
      __builtin_memcpy(&b, bounds_ + i, sizeof b);
      below -= (vv > b);
    }
    return static_cast<std::uint32_t>(below[0] + below[1]);
#else
    std::uint32_t below = 0;
    for (std::uint32_t i = 0; i < bound_count_; ++i) {
      below += v > bounds_[i] ? 1u : 0u;
    }
    return below;
#endif
  }
  // Slot layout from base_slot_: [sum][bucket 0]...[bucket bound_count_ (+Inf)].
  void Record(double v, std::uint32_t bucket) noexcept {
    internal::Slot* s = internal::LocalSlot(base_slot_);
    internal::AddDouble(s, v);
    internal::AddOne(s + 1 + bucket);
  }

  std::uint32_t base_slot_;
  std::uint32_t bound_count_;
  const double* bounds_;  // owned by the family
  std::atomic<internal::ExemplarCell*> exemplars_{nullptr};
};

enum class ExpositionFormat { kPrometheusText, kOpenMetrics };
enum class MetricType { kCounter, kGauge, kHistogram };

// What a collector callback writes into at scrape time, rendering in the negotiated
// format. Consecutive calls with the same metric name form one family under a single
// HELP/TYPE header, so one family with several label sets is several calls in a row:
//
//   w.Counter("vigil_telemetry_dropped_total", "Dropped items.",
//             {{"signal", "logs"}, {"reason", "queue_full"}}, 12);
//   w.Counter("vigil_telemetry_dropped_total", "Dropped items.",
//             {{"signal", "spans"}, {"reason", "queue_full"}}, 3);
//
// Samples with an invalid metric or label name, or a counter name not ending in
// `_total`, are skipped (a scrape never fails). A family's samples must be written
// consecutively; the names must not collide with registered families.
// Thread-safety: used by one scrape on one thread; not to be kept past the callback.
class MetricWriter {
 public:
  struct Label {
    std::string_view name;
    std::string_view value;
  };

  void Counter(std::string_view name, std::string_view help, std::initializer_list<Label> labels,
               double value);
  void Counter(std::string_view name, std::string_view help, std::span<const Label> labels,
               double value);
  void Gauge(std::string_view name, std::string_view help, std::initializer_list<Label> labels,
             double value);
  void Gauge(std::string_view name, std::string_view help, std::span<const Label> labels,
             double value);

  ExpositionFormat format() const noexcept { return format_; }

  MetricWriter(ExpositionFormat format, std::string& out) noexcept : format_(format), out_(out) {}

 private:
  void Sample(MetricType type, std::string_view name, std::string_view help,
              std::span<const Label> labels, double value);

  ExpositionFormat format_;
  std::string& out_;
  std::string family_;  // the family whose header was written last
  MetricType family_type_ = MetricType::kGauge;
};

struct FamilyOptions {
  // Distinct label sets kept; further sets share one overflow child whose label values
  // are all "_overflow".
  std::size_t max_series = 2000;
};

namespace internal {

struct Series;
struct SeriesTable;

// The type-independent part of a family: names, the label-set table, exposition.
// Thread-safety: lookups are lock-free; inserting a new label set takes a mutex.
class FamilyBase {
 public:
  FamilyBase(const FamilyBase&) = delete;
  FamilyBase& operator=(const FamilyBase&) = delete;
  virtual ~FamilyBase();

  const std::string& name() const noexcept { return name_; }
  const std::string& help() const noexcept { return help_; }
  MetricType type() const noexcept { return type_; }
  const std::vector<std::string>& label_names() const noexcept { return label_names_; }
  // Lookups of a new label set that were redirected to the overflow child.
  std::uint64_t overflowed() const noexcept { return overflowed_.load(std::memory_order_relaxed); }

 protected:
  FamilyBase(MetricType type, std::string name, std::string help,
             std::vector<std::string> label_names, std::span<const double> buckets,
             FamilyOptions options);
  void* Lookup(std::span<const std::string_view> values);

 private:
  friend class vigil::telemetry::Registry;

  void* LookupSlow(std::span<const std::string_view> values, std::uint64_t hash);
  Series* Insert(std::span<const std::string_view> values, std::uint64_t hash);
  void* NewMetric();
  void DeleteMetric(void* metric) noexcept;
  void Write(ExpositionFormat format, std::string& out) const;
  bool SameShape(MetricType type, const std::vector<std::string>& label_names,
                 std::span<const double> buckets) const;

  MetricType type_;
  std::string name_;
  std::string help_;
  std::vector<std::string> label_names_;
  FamilyOptions options_;
  std::vector<double> bounds_;  // padded with +Inf to an even count
  std::uint32_t bound_count_ = 0;
  std::string text_header_;  // "# HELP ...\n# TYPE ...\n"
  std::string om_header_;
  std::vector<std::string> text_le_;  // rendered `le` values, +Inf last
  std::vector<std::string> om_le_;

  std::atomic<SeriesTable*> table_{nullptr};
  std::atomic<bool> full_{false};
  std::atomic<std::uint64_t> overflowed_{0};
  Series* overflow_ = nullptr;
  mutable std::mutex mu_;  // inserts, the series list, retired tables
  std::vector<std::unique_ptr<Series>> series_;
  std::vector<std::unique_ptr<SeriesTable>> tables_;  // current is back(); older ones
                                                      // stay for lock-free readers
};

}  // namespace internal

// The children of one metric name, one per distinct label-value set.
// Thread-safety: all methods may be called concurrently from any number of threads.
template <class M>
class Family final : public internal::FamilyBase {
 public:
  // The child for these label values (in the order of the family's label names),
  // created on first use. An existing set is found without locking or allocating.
  // Throws std::invalid_argument when the number of values is wrong.
  M& WithLabels(std::initializer_list<std::string_view> values) {
    return WithLabels(std::span<const std::string_view>(values.begin(), values.size()));
  }
  M& WithLabels(std::span<const std::string_view> values) {
    return *static_cast<M*>(Lookup(values));
  }

 private:
  friend class Registry;
  using internal::FamilyBase::FamilyBase;
};

// Owns metric families and renders them. Families and children live as long as the
// registry; references to them stay valid.
// Registration validates names (Prometheus grammar; no `__` prefix; counters end in
// `_total`; histograms may not have an `le` label) and throws std::invalid_argument on a
// bad name or on a name that conflicts with an existing family (another type, other
// labels or buckets, or a clash of derived sample names such as `x_count`). Registering
// an existing family again with the same shape returns it.
// `vigil_metrics_overflow_total{metric="<family>"}` is exposed for every family whose
// overflowed() is nonzero (it is absent while no family overflows).
// Thread-safety: all methods may be called concurrently. Collectors run during Expose()
// and must not register metrics on the same registry.
class Registry {
 public:
  Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;
  ~Registry();

  Family<Counter>& CounterFamily(std::string name, std::string help,
                                 std::vector<std::string> label_names, FamilyOptions options = {});
  Family<Gauge>& GaugeFamily(std::string name, std::string help,
                             std::vector<std::string> label_names, FamilyOptions options = {});
  Family<Histogram>& HistogramFamily(std::string name, std::string help,
                                     std::vector<std::string> label_names,
                                     std::span<const double> buckets = kDurationBuckets,
                                     FamilyOptions options = {});

  Counter& AddCounter(std::string name, std::string help);
  Gauge& AddGauge(std::string name, std::string help);
  Histogram& AddHistogram(std::string name, std::string help,
                          std::span<const double> buckets = kDurationBuckets);

  // Metrics whose values are read at scrape time. Collectors run after the registered
  // families, in the order they were added; an exception propagates out of Expose().
  void AddCollector(std::function<void(MetricWriter&)> collect);
  // The same, once per `key`: returns false (and drops `collect`) when a collector with
  // this key was already added.
  bool AddCollector(std::string key, std::function<void(MetricWriter&)> collect);

  // Appends the exposition to `out`.
  void Expose(ExpositionFormat format, std::string& out) const;
  std::string Expose(ExpositionFormat format) const;

 private:
  internal::FamilyBase& Register(MetricType type, std::string name, std::string help,
                                 std::vector<std::string> label_names,
                                 std::span<const double> buckets, FamilyOptions options);

  mutable std::shared_mutex mu_;
  std::vector<std::unique_ptr<internal::FamilyBase>> families_;
  // Every family and sample name a family may print, to refuse clashes at registration.
  std::unordered_map<std::string, internal::FamilyBase*> claimed_;
  std::vector<std::string> collector_keys_;
  std::vector<std::unique_ptr<std::function<void(MetricWriter&)>>> collectors_;
};

// Which format to serve for an HTTP Accept header.
struct Negotiation {
  ExpositionFormat format;
  std::string_view content_type;  // a static string, ready for the Content-Type header
};
inline constexpr std::string_view kPrometheusTextContentType =
    "text/plain; version=0.0.4; charset=utf-8";
inline constexpr std::string_view kOpenMetricsContentType =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

// OpenMetrics when the header lists application/openmetrics-text (version 1.0.0, 0.0.1
// or none) with q > 0 and at least the q of text/plain (or, when text/plain is not
// listed, of text/* or */*); Prometheus text otherwise, also for empty or malformed
// headers. Malformed list elements are ignored. Never throws.
Negotiation NegotiateExposition(std::string_view accept_header) noexcept;

// process_cpu_seconds_total, process_resident_memory_bytes,
// process_virtual_memory_bytes, process_open_fds, process_max_fds and
// process_start_time_seconds, read from /proc at scrape time. A value that cannot be
// read is left out of that scrape. Registering twice on one registry adds them once.
void RegisterProcessMetrics(Registry& registry);

// vigil_build_info{version="…",revision="…"} 1 (a gauge).
void RegisterBuildInfo(Registry& registry, std::string_view version, std::string_view revision);
// The same with the version and revision this library was built from.
void RegisterBuildInfo(Registry& registry);

}  // namespace vigil::telemetry
