// Counts of what the reporter discarded, by reason and data category: what its client
// reports tell Sentry (develop.sentry.dev, "Client Reports") and its metrics tell
// Prometheus.
//
//   outcomes.Add(DiscardReason::kQueueOverflow, Category::kError);   // any thread
//   for (const auto& o : outcomes.TakePending()) ...                 // the sender: report once
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>
#include <vigil/telemetry/errors.hpp>

#include "errors/rate_limits.hpp"

namespace vigil::telemetry::internal {

class Outcomes {
 public:
  struct Pending {
    DiscardReason reason;
    Category category;
    std::uint64_t quantity;
  };

  void Add(DiscardReason reason, Category category, std::uint64_t n = 1) noexcept {
    pending_[Index(reason, category)].fetch_add(n, std::memory_order_relaxed);
    if (category == Category::kError) {
      total_[static_cast<std::size_t>(reason)].fetch_add(n, std::memory_order_relaxed);
    }
  }
  bool HasPending() const noexcept {
    for (const auto& p : pending_) {
      if (p.load(std::memory_order_relaxed) != 0) return true;
    }
    return false;
  }
  // The counts since the last call, reset.
  std::vector<Pending> TakePending() {
    std::vector<Pending> out;
    for (std::size_t r = 0; r < kReasons; ++r) {
      for (std::size_t c = 0; c < kCategories; ++c) {
        if (const std::uint64_t n = pending_[r * kCategories + c].exchange(0); n != 0) {
          out.push_back({static_cast<DiscardReason>(r), static_cast<Category>(c), n});
        }
      }
    }
    return out;
  }
  // Puts counts back (their report could not be sent).
  void Restore(const std::vector<Pending>& pending) noexcept {
    for (const Pending& p : pending) {
      pending_[Index(p.reason, p.category)].fetch_add(p.quantity, std::memory_order_relaxed);
    }
  }
  // Events discarded since construction, by reason (never reset).
  std::uint64_t Total(DiscardReason reason) const noexcept {
    return total_[static_cast<std::size_t>(reason)].load(std::memory_order_relaxed);
  }

 private:
  static constexpr std::size_t kReasons = static_cast<std::size_t>(DiscardReason::kCount);
  static constexpr std::size_t kCategories = static_cast<std::size_t>(Category::kCount);
  static std::size_t Index(DiscardReason r, Category c) noexcept {
    return static_cast<std::size_t>(r) * kCategories + static_cast<std::size_t>(c);
  }

  std::array<std::atomic<std::uint64_t>, kReasons * kCategories> pending_{};
  std::array<std::atomic<std::uint64_t>, kReasons> total_{};
};

}  // namespace vigil::telemetry::internal
