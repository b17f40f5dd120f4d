// The last log lines of the requests in flight, for the breadcrumbs of an event.
//
// The logger's backend hands every line to the reporter (a LogObserver); the lines
// logged with a request context land here, in a fixed ring of the last kCapacity, each
// cut to a bounded size, their sensitive fields already filtered. When an event of a
// request is sent, the reporter's thread takes that request's lines from the ring. So the
// log call on the request path costs exactly what it did: the copying happens on the
// logger's backend thread, the lookup on the reporter's.
//
//   RecentLines lines;
//   lines.Add(line);                                  // backend thread
//   auto crumbs = lines.Of(event.request_id, event.trace_id, event.time_unix_nano, 50);
//
// Thread-safety: Add() and Of() may be called concurrently (a mutex, held for a copy).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>
#include <vigil/telemetry/errors.hpp>
#include <vigil/telemetry/log.hpp>

namespace vigil::telemetry::internal {

// A field's value as text: strings as they are, numbers as JSON writes them, durations
// in milliseconds, booleans as true/false.
std::string FieldText(const Field& field);

class RecentLines {
 public:
  static constexpr std::size_t kCapacity = 512;
  static constexpr std::size_t kMaxMessage = 200;
  static constexpr std::size_t kMaxData = 240;  // "key=value" pairs of the fields

  RecentLines();

  // Keeps `line` when it has a request context.
  void Add(const LogLineView& line);
  // The kept lines of the request (`request_id`, or `trace_id` when it is empty) logged
  // no later than `until_unix_nano`, oldest first, the last `max` of them.
  std::vector<Breadcrumb> Of(std::string_view request_id, const TraceId& trace_id,
                             std::int64_t until_unix_nano, std::size_t max);

 private:
  struct Entry {
    std::int64_t time = 0;
    LogLevel level = LogLevel::kInfo;
    TraceId trace_id;
    std::uint8_t request_id_size = 0;
    std::uint8_t data_fields = 0;
    std::uint16_t message_size = 0;
    std::uint16_t data_size = 0;
    std::array<char, RequestId::kMaxSize> request_id;
    std::array<char, kMaxMessage> message;
    std::array<char, kMaxData> data;  // data_fields times [key size][key][value size][value]
  };

  std::mutex mu_;
  std::vector<Entry> ring_;
  std::size_t next_ = 0;
  std::size_t size_ = 0;
};

}  // namespace vigil::telemetry::internal
