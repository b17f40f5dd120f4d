// The log ring on its own: records of every size survive many laps, including the
// consumer's eviction of the lines it has read.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "log/record.hpp"
#include "log/ring.hpp"

namespace vigil::telemetry::log_internal {
namespace {

struct RingDeleter {
  void operator()(Ring* ring) const {
    ring->Release();
    ring->Release();
  }
};

// A record of `size` bytes (multiple of 8): the record header the consumer reads, then a
// byte pattern derived from `seq`.
void Fill(char* p, std::size_t size, std::uint32_t seq) {
  Put(p, static_cast<std::uint32_t>(size));
  p[4] = static_cast<char>(kRecordLine);
  for (std::size_t i = 5; i < size; ++i) p[i] = static_cast<char>((seq * 31 + i) & 0xFF);
}

bool Matches(const char* p, std::size_t size, std::uint32_t seq) {
  for (std::size_t i = 5; i < size; ++i) {
    if (p[i] != static_cast<char>((seq * 31 + i) & 0xFF)) return false;
  }
  return true;
}

TEST(LogRing, RecordsSurviveManyLapsWithTheConsumerEvictingItsLines) {
  std::unique_ptr<Ring, RingDeleter> ring(Ring::Create(256, 1));
  ASSERT_NE(ring, nullptr);
  std::uint32_t written = 0;
  std::uint32_t read = 0;
  std::vector<std::size_t> sizes;  // of records written and not yet read
  std::size_t bytes = 0;
  // Sizes from 8 to the largest record, so records start and end at every offset of a
  // cache line and some fill the ring's tail with padding.
  for (int round = 0; round < 20'000; ++round) {
    const std::size_t size = 8 * (1 + (static_cast<std::size_t>(round) * 7) % 16);
    if (char* p = ring->TryReserve(size)) {
      Fill(p, size, written++);
      ring->Commit();
      sizes.push_back(size);
      bytes += size;
    }
    if (round % 3 == 0 || sizes.size() > 6) {
      std::size_t i = 0;
      ring->Consume([&](const char* rec, std::size_t n) {
        ASSERT_LT(i, sizes.size());
        EXPECT_EQ(n, sizes[i]);
        EXPECT_TRUE(Matches(rec, n, read)) << "record " << read;
        ++read;
        ++i;
      });
      EXPECT_EQ(i, sizes.size());
      sizes.clear();
    }
  }
  EXPECT_GT(bytes, 1000 * ring->capacity());  // a thousand laps at least
  EXPECT_EQ(written, read + sizes.size());
}

}  // namespace
}  // namespace vigil::telemetry::log_internal
