// Test support: Sentry envelopes split into their parts (develop.sentry.dev, "Envelopes"):
// the header line, then each item's header line and payload. It checks the framing (a
// newline after each header, payloads of exactly the declared length followed by a
// newline, or up to the next newline without a length); the JSON of each part is left to
// the test.
//
//   auto envelope = vigil::test_support::SplitEnvelope(test_support::Gunzip(body));
//   ASSERT_TRUE(envelope);
//   EXPECT_EQ(envelope->items[0].type, "event");
//
// Thread-safety: a pure function.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vigil::test_support {

struct EnvelopeItem {
  std::string type;     // the header's "type"
  std::string header;   // the header line's JSON
  std::string payload;  // exactly the payload's bytes
};

struct Envelope {
  std::string header;
  std::vector<EnvelopeItem> items;
  // The items of one type, in order.
  std::vector<const EnvelopeItem*> Items(std::string_view type) const;
};

// nullopt when the framing is broken.
std::optional<Envelope> SplitEnvelope(std::string_view data);

}  // namespace vigil::test_support
