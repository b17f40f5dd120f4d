// The log ring on its own: records of every size survive many laps, including the
// consumer's eviction of the lines it has read.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "log/record.hpp"
#include "log/ring.hpp"

namespace vigil::telemetry::internal {
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
  for (std::size_t i = 5; i < size; ++i) {
    p[i] = static_cast<char>((std::size_t{seq} * 31 + i) & 0xFF);
  }
}

bool Matches(const char* p, std::size_t size, std::uint32_t seq) {
  for (std::size_t i = 5; i < size; ++i) {
    if (p[i] != static_cast<char>((std::size_t{seq} * 31 + i) & 0xFF)) {
      return false;
    }
  }
  return true;
}

// Reads every published record: they must be the records of `sizes`, in order, filled
// from sequence number `read` on. Advances `read` and empties `sizes`.
void ConsumeAndCheck(Ring& ring, std::vector<std::size_t>& sizes, std::uint32_t& read) {
  std::size_t i = 0;
  ring.Consume([&](const char* rec, std::size_t n) {
    ASSERT_LT(i, sizes.size());
    EXPECT_EQ(n, sizes[i]);
    EXPECT_TRUE(Matches(rec, n, read)) << "record " << read;
    ++read;
    ++i;
  });
  EXPECT_EQ(i, sizes.size());
  sizes.clear();
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
      ConsumeAndCheck(*ring, sizes, read);
    }
  }
  EXPECT_GT(bytes, 1000 * ring->capacity());  // a thousand laps at least
  EXPECT_EQ(written, read + sizes.size());
}

// The producer's two ways to reserve, taken as Logger::Write takes them: the one-compare
// fast path whenever it answers, the general one (padding at the buffer's end, the
// consumer's position re-read) otherwise. A fast reservation never runs past the end of
// the buffer nor leaves more than half the ring unread.
TEST(LogRing, FastReservationsStayBeforeTheEndAndBelowHalfFull) {
  std::unique_ptr<Ring, RingDeleter> ring(Ring::Create(256, 1));
  ASSERT_NE(ring, nullptr);
  const char* base = nullptr;
  std::uint32_t written = 0;
  std::uint32_t read = 0;
  std::vector<std::size_t> sizes;
  std::size_t pending = 0;  // record bytes written and not yet read
  int fast = 0;
  int general = 0;
  int full = 0;
  for (int round = 0; round < 20'000; ++round) {
    std::size_t size = 8 * (1 + (static_cast<std::size_t>(round) * 5) % 16);
    if (char* p = ring->TryReserveFast(size)) {
      if (base == nullptr) {
        base = p;  // the very first record starts the buffer
      }
      EXPECT_LE(p + size, base + ring->capacity());
      EXPECT_LE(pending + size, ring->capacity() / 2);
      Fill(p, size, written++);
      ring->CommitFast(size);
      ++fast;
    } else if (char* q = ring->TryReserve(size)) {
      Fill(q, size, written++);
      ring->Commit();
      ++general;
    } else {
      ++full;
      size = 0;
    }
    if (size != 0) {
      sizes.push_back(size);
      pending += size;
    }
    if (round % 5 == 0) {
      ConsumeAndCheck(*ring, sizes, read);
      pending = 0;
    }
  }
  EXPECT_EQ(written, read + sizes.size());
  EXPECT_GT(fast, 1000);
  EXPECT_GT(general, 100);  // every wrap, and every reservation past half full
  EXPECT_GT(full, 0);
}

// The fast path's limit, step by step in a 256-byte ring whose consumer reads every
// record at once: the limit is the consumer's position as last re-read plus half the
// ring, and never beyond the end of the buffer; crossing it takes the general path,
// which re-reads the consumer's position and pads at the buffer's end.
TEST(LogRing, FastPathLimitIsHalfTheRingAndTheBufferEnd) {
  std::unique_ptr<Ring, RingDeleter> ring(Ring::Create(256, 1));
  ASSERT_NE(ring, nullptr);
  const char* base = nullptr;
  std::uint32_t seq = 0;
  // 'F' fast path, 'G' general path; the record is read back at once.
  const auto write = [&](std::size_t size, std::size_t want_offset) {
    char path = 'F';
    char* p = ring->TryReserveFast(size);
    if (p == nullptr) {
      path = 'G';
      p = ring->TryReserve(size);
    }
    if (p == nullptr) {
      return 'X';
    }
    if (base == nullptr) {
      base = p;
    }
    EXPECT_EQ(static_cast<std::size_t>(p - base), want_offset) << "record " << seq;
    EXPECT_LE(p + size, base + ring->capacity()) << "record " << seq;
    Fill(p, size, seq);
    if (path == 'F') {
      ring->CommitFast(size);
    } else {
      ring->Commit();
    }
    int records = 0;
    ring->Consume([&](const char* rec, std::size_t n) {
      EXPECT_EQ(n, size);
      EXPECT_TRUE(Matches(rec, n, seq));
      ++records;
    });
    EXPECT_EQ(records, 1);
    ++seq;
    return path;
  };
  EXPECT_EQ(write(96, 0), 'F');    // limit 128: the consumer at 0, as first known
  EXPECT_EQ(write(8, 96), 'F');    // ends at 104
  EXPECT_EQ(write(96, 104), 'G');  // 200 > 128: consumer re-read (104), limit 232
  EXPECT_EQ(write(32, 200), 'F');  // ends exactly at the limit
  EXPECT_EQ(write(8, 232), 'G');   // consumer re-read (232): limit the buffer's end, 256
  EXPECT_EQ(write(24, 0), 'G');    // 264 > 256: padding to the end, the record at 0
  EXPECT_EQ(write(16, 24), 'F');
}

}  // namespace
}  // namespace vigil::telemetry::internal
