#include "trace/record_pool.hpp"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <string>
#include <variant>

#include "prefetch.hpp"

namespace vigil::telemetry::internal {
namespace {

// Buffers above these sizes come from an unusual span; keeping them would pin memory in
// every record that ever saw one.
constexpr std::size_t kMaxKeptString = 4096;
constexpr std::size_t kMaxKeptAttributes = 64;
constexpr std::size_t kMaxKeptEvents = 16;
constexpr std::size_t kMaxKeptLinks = 16;

// How many records a thread allocates at once when the shared pool is empty.
constexpr std::size_t kAllocateBatch = 16;

struct SharedPool {
  std::mutex mu;
  std::vector<PooledRecord*> free;
  std::size_t capacity = 0;
};

// Never destroyed: thread caches hand records back from thread-exit destructors that
// may run after static destructors.
SharedPool& Shared() {
  static SharedPool* pool = new SharedPool;
  return *pool;
}

std::atomic<std::int64_t> g_live_records{0};

void ShrinkString(std::string& s) noexcept {
  if (s.capacity() > kMaxKeptString) {
    std::string().swap(s);
  }
}

void ShrinkAttribute(Attribute& a) {
  ShrinkString(a.key);
  if (auto* s = std::get_if<std::string>(&a.value.v)) {
    ShrinkString(*s);
  } else if (std::holds_alternative<AttributeArray>(a.value.v)) {
    a.value.v = false;  // arrays are rare; do not keep their elements around
  }
}

void ShrinkAttributes(std::vector<Attribute>& attributes, std::size_t max_kept) {
  if (attributes.size() > max_kept) {
    attributes.erase(attributes.begin() + static_cast<std::ptrdiff_t>(max_kept), attributes.end());
  }
  for (auto& a : attributes) {
    ShrinkAttribute(a);
  }
}

void FreeRecords(PooledRecord* const* records, std::size_t count) noexcept {
  for (std::size_t i = 0; i < count; ++i) {
    delete records[i];
  }
  g_live_records.fetch_sub(static_cast<std::int64_t>(count), std::memory_order_relaxed);
}

// Hands records to the shared pool; frees what does not fit.
void GiveToShared(PooledRecord* const* records, std::size_t count) noexcept {
  SharedPool& pool = Shared();
  std::size_t kept = 0;
  {
    std::lock_guard lock(pool.mu);
    const std::size_t room =
        pool.capacity > pool.free.size() ? pool.capacity - pool.free.size() : 0;
    kept = std::min(room, count);
    try {
      pool.free.insert(pool.free.end(), records, records + kept);
    } catch (...) {
      kept = 0;  // out of memory: free them instead
    }
  }
  FreeRecords(records + kept, count - kept);
}

class ThreadCache {
 public:
  ThreadCache() { items_.reserve(2 * kThreadCacheRefill); }
  ~ThreadCache() { GiveToShared(items_.data(), items_.size()); }
  ThreadCache(const ThreadCache&) = delete;
  ThreadCache& operator=(const ThreadCache&) = delete;

  PooledRecord* Take() {
    if (items_.empty()) {
      Refill();
    }
    PooledRecord* r = items_.back();
    items_.pop_back();
    PrefetchNextRecords();
    return r;
  }

  void Put(PooledRecord* r) noexcept {
    if (items_.size() >= 2 * kThreadCacheRefill) {
      const std::size_t keep = items_.size() - kThreadCacheRefill;
      GiveToShared(items_.data() + keep, kThreadCacheRefill);
      items_.resize(keep);
    }
    items_.push_back(r);  // within the reserved capacity: cannot throw
  }

 private:
  void Refill() {
    SharedPool& pool = Shared();
    {
      std::lock_guard lock(pool.mu);
      const std::size_t n = std::min(kThreadCacheRefill, pool.free.size());
      items_.insert(items_.end(), pool.free.end() - static_cast<std::ptrdiff_t>(n),
                    pool.free.end());
      pool.free.resize(pool.free.size() - n);
    }
    if (!items_.empty()) {
      return;
    }
    for (std::size_t i = 0; i < kAllocateBatch; ++i) {
      items_.push_back(new PooledRecord);  // within the reserved capacity
      g_live_records.fetch_add(1, std::memory_order_relaxed);
    }
  }

  // The records this thread takes next were usually read last by the export thread on
  // the other core, so each line a span writes would wait for that core to give it up,
  // one line after another. Asking for them ahead, with the intent to write, lets those
  // transfers overlap: the record three takes ahead, the attribute array of the one two
  // ahead (its header arrived meanwhile), the key and value buffers of the next one.
  void PrefetchNextRecords() const noexcept {
    using prefetch::Intent;
    const std::size_t n = items_.size();
    if (n >= 3) {
      prefetch::PrefetchLines<Intent::kWrite>(items_[n - 3], sizeof(PooledRecord));
    }
    if (n >= 2) {
      const std::vector<Attribute>& attributes = items_[n - 2]->attributes;
      prefetch::PrefetchLines<Intent::kWrite>(attributes.data(),
                                              attributes.size() * sizeof(Attribute));
    }
    if (n >= 1) {
      prefetch::PrefetchAttributeBuffers<Intent::kWrite>(items_[n - 1]->attributes);
    }
  }

  std::vector<PooledRecord*> items_;
};

ThreadCache& LocalCache() {
  thread_local ThreadCache cache;
  return cache;
}

}  // namespace

void PooledRecord::Reset() noexcept {
  trace_id = {};
  span_id = {};
  parent_span_id = {};
  flags = {};
  trace_state.clear();
  parent_is_remote = false;
  name.clear();
  kind = SpanKind::kInternal;
  start_unix_nano = end_unix_nano = 0;
  status.code = StatusCode::kUnset;
  status.message.clear();
  dropped_attributes_count = dropped_events_count = dropped_links_count = 0;
  processor = nullptr;
  attributes_used = events_used = links_used = 0;
  oversized = false;
}

void PooledRecord::TrimToUsed() noexcept {
  if (attributes.size() > attributes_used) {
    // Highest index first, so the next span pops them back in their original order and
    // each slot meets a value of the type it held before (strings keep their buffers).
    try {
      for (std::size_t i = attributes.size(); i > attributes_used; --i) {
        spare_attributes.push_back(std::move(attributes[i - 1]));
      }
    } catch (...) {
      // Out of memory growing the spare list: the elements are simply freed below.
    }
    attributes.erase(attributes.begin() + attributes_used, attributes.end());
  }
  if (events.size() > events_used) {
    events.erase(events.begin() + events_used, events.end());
  }
  if (links.size() > links_used) {
    links.erase(links.begin() + links_used, links.end());
  }
}

void PooledRecord::ShrinkOversized() {
  ShrinkString(name);
  ShrinkString(trace_state);
  ShrinkString(status.message);
  ShrinkAttributes(attributes, kMaxKeptAttributes);
  ShrinkAttributes(spare_attributes, kMaxKeptAttributes);
  if (events.size() > kMaxKeptEvents) {
    events.erase(events.begin() + static_cast<std::ptrdiff_t>(kMaxKeptEvents), events.end());
  }
  for (auto& e : events) {
    ShrinkString(e.name);
    ShrinkAttributes(e.attributes, kMaxKeptNestedAttributes);
  }
  if (links.size() > kMaxKeptLinks) {
    links.erase(links.begin() + static_cast<std::ptrdiff_t>(kMaxKeptLinks), links.end());
  }
  for (auto& l : links) {
    ShrinkAttributes(l.attributes, kMaxKeptNestedAttributes);
  }
}

void PooledRecord::Recycle() noexcept {
  if (oversized || attributes.size() > kMaxKeptAttributes ||
      spare_attributes.size() > kMaxKeptAttributes || events.size() > kMaxKeptEvents ||
      links.size() > kMaxKeptLinks) {
    try {
      ShrinkOversized();
    } catch (...) {
      // Shrinking only moves and frees; should it ever throw, the record is merely larger.
    }
  }
  Reset();
}

PooledRecord* AcquireRecord() {
  PooledRecord* r = LocalCache().Take();
  r->Recycle();
  return r;
}

void ReleaseRecordLocal(PooledRecord* record) noexcept { LocalCache().Put(record); }

void ReleaseRecords(PooledRecord* const* records, std::size_t count) noexcept {
  GiveToShared(records, count);
}

void AddPoolCapacity(std::size_t records) noexcept {
  SharedPool& pool = Shared();
  std::lock_guard lock(pool.mu);
  pool.capacity += records;
}

void RemovePoolCapacity(std::size_t records) noexcept {
  SharedPool& pool = Shared();
  std::vector<PooledRecord*> surplus;
  {
    std::lock_guard lock(pool.mu);
    pool.capacity -= std::min(records, pool.capacity);
    if (pool.free.size() > pool.capacity) {
      const auto keep = static_cast<std::ptrdiff_t>(pool.capacity);
      try {
        surplus.assign(pool.free.begin() + keep, pool.free.end());
      } catch (...) {
        return;  // keep them; the next release trims the pool
      }
      pool.free.erase(pool.free.begin() + keep, pool.free.end());
    }
  }
  FreeRecords(surplus.data(), surplus.size());
}

PoolStats GetPoolStats() noexcept {
  SharedPool& pool = Shared();
  std::lock_guard lock(pool.mu);
  return PoolStats{g_live_records.load(std::memory_order_relaxed), pool.free.size(), pool.capacity};
}

}  // namespace vigil::telemetry::internal
