// Response fields laid out once and written with every answer of a kind: the security
// headers every response carries (middleware/security_headers.hpp).
//
// Setting eight fields one by one in a response's field container costs more than the
// rest of a small answer's head; a FieldBlock instead holds the field lines as one
// ready string, and the server appends it while it writes the head, in the same pass
// that writes the response's own fields. Each entry says what happens when the response
// already has a field of its name: keep the response's (a handler's own Cache-Control)
// or replace it (the gateway's policy over an upstream's); an entry may also remove a
// field from every answer (Server, X-Powered-By).
//
//   http::FieldBlock block;
//   block.Set("X-Frame-Options", "DENY", http::FieldBlock::kReplace)
//        .Set("Cache-Control", "no-store", http::FieldBlock::kKeep)
//        .Remove("Server");
//   exchange.set_field_block(&block);  // must outlive the exchange
//
// Thread-safety: built at start-up; read-only afterwards, from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>
#include <vigil/http/exchange.hpp>

namespace vigil::http {

// Whether `value` may be a field value as written: no control character but tab (a CR or
// LF would let it start another field).
bool IsFieldValue(std::string_view value) noexcept;

class FieldBlock {
 public:
  // What an entry does when the response has a field of the same name.
  enum Existing { kKeep, kReplace };
  static constexpr std::size_t kMaxEntries = 32;

  // Adds `name: value` to every answer. Throws std::invalid_argument for a name that is
  // not a token, a value with a control character, a name given twice, or more than
  // kMaxEntries entries.
  FieldBlock& Set(std::string_view name, std::string_view value, Existing existing);
  // Removes every `name` field from answers.
  FieldBlock& Remove(std::string_view name);

  bool empty() const noexcept { return entries_.empty(); }

  // ---- For the server, while it writes a head -----------------------------------------
  // The entry named `name` (case-insensitive), or -1.
  int Find(std::string_view name) const noexcept {
    if (name.size() >= 64 || ((lengths_ >> name.size()) & 1U) == 0) return -1;
    return FindSlow(name);
  }
  // Whether the response's own field at entry `index` is written (kKeep) or dropped.
  bool KeepsResponseField(int index) const noexcept {
    return entries_[static_cast<std::size_t>(index)].existing == kKeep;
  }
  // Appends the entries' field lines, except those whose bit (1 << index) is set in
  // `skip` (a response field of that name was kept).
  void AppendTo(std::string& out, std::uint32_t skip) const;
  // The same on a field container (a streamed head, written by Beast's serializer).
  void ApplyTo(ResponseHeader& head) const;

 private:
  struct Entry {
    std::string name;
    std::string line;  // "Name: value\r\n"; empty for a removal
    Existing existing;
    std::size_t offset;  // where the line starts in lines_
  };
  int FindSlow(std::string_view name) const noexcept;
  void Check(std::string_view name);

  std::vector<Entry> entries_;
  std::string lines_;          // every entry's line, in order: AppendTo's usual case
  std::uint64_t lengths_ = 0;  // bit n: an entry's name has n characters
};

}  // namespace vigil::http
