// Checks on torch.save files (inputs.pt, outputs.pt, reference files) for what libtorch 1.13's
// unpickler believes without looking. Found by fuzz/fuzz_reference_file:
//   - a memo index (LONG_BINPUT) grows the memo table to that size: 0x71656761 asked for 30 GB
//     from a 200-byte pickle; a string length is allocated (and zero-filled) before it is read;
//   - REDUCE, TUPLE, SETITEM, ... take their stack entries and marks unchecked: REDUCE on an
//     empty stack is a SEGV;
//   - a storage's size, and a tensor's sizes, strides and offset, come from the pickle: a
//     storage larger than its record, or a view past its storage, reads beyond the data.
// Header-only: the importer (inputs) and verify (references) read the same format.
#pragma once

#include <ATen/core/Tensor.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace kdecomp {

// The first thing in `pickle` that libtorch 1.13's unpickler would act on unchecked, or "" when
// there is none. It walks the opcodes that unpickler reads, keeping count of its stack, its marks
// and its memo (not of the values: the unpickler checks their types itself), and refuses
//   - a length or a memo index the bytes cannot back (the unpickler allocates first);
//   - an opcode that takes more stack entries than there are, or a mark that is not there
//     (REDUCE on an empty stack read before the stack's start: a SEGV).
// At an opcode it does not know it stops: the unpickler refuses those itself.
inline std::string pickleProblem(const char* pickle, size_t size) {
  size_t pos = 0, depth = 0;
  uint64_t memo = 0;  // entries the memo table has
  std::vector<size_t> marks;
  auto fits = [&](uint64_t bytes) { return bytes <= size - pos; };
  auto readUint = [&](size_t bytes) {
    uint64_t v = 0;
    for (size_t i = 0; i < bytes; ++i) v |= uint64_t{static_cast<unsigned char>(pickle[pos + i])} << (8 * i);
    pos += bytes;
    return v;
  };
  // Pops a mark, which must lie within the stack; false when there is none.
  auto popMark = [&](size_t& mark) {
    if (marks.empty() || marks.back() > depth) return false;
    mark = marks.back();
    marks.pop_back();
    return true;
  };
  const std::string truncated = "truncated", underflow = "an opcode takes more than the stack holds";
  while (pos < size) {
    size_t mark = 0;
    switch (static_cast<unsigned char>(pickle[pos++])) {
      case '.':  // STOP: the value is the one entry left
        return depth == 1 ? "" : "the pickle does not end with one value";
      case 0x80:  // PROTO
        if (!fits(1)) return truncated;
        pos += 1;
        break;
      case 'K':  // BININT1
        if (!fits(1)) return truncated;
        pos += 1, ++depth;
        break;
      case 'M':  // BININT2
        if (!fits(2)) return truncated;
        pos += 2, ++depth;
        break;
      case 'J':  // BININT
        if (!fits(4)) return truncated;
        pos += 4, ++depth;
        break;
      case 'G':  // BINFLOAT
        if (!fits(8)) return truncated;
        pos += 8, ++depth;
        break;
      case 0x8a: {  // LONG1
        if (!fits(1)) return truncated;
        uint64_t length = readUint(1);
        if (!fits(length)) return "an integer longer than the pickle";
        pos += length, ++depth;
        break;
      }
      case 'X': {  // BINUNICODE: allocated before it is read
        if (!fits(4)) return truncated;
        uint64_t length = readUint(4);
        if (!fits(length)) return "a string longer than the pickle";
        pos += length, ++depth;
        break;
      }
      case 'q':    // BINPUT
      case 'r': {  // LONG_BINPUT: the memo table grows to the index
        size_t bytes = pickle[pos - 1] == 'q' ? 1 : 4;
        if (!fits(bytes)) return truncated;
        uint64_t index = readUint(bytes);
        if (index >= size) return "a memo index past the pickle's size";
        if (depth == 0) return underflow;
        memo = std::max(memo, index + 1);
        break;
      }
      case 'h':    // BINGET
      case 'j': {  // LONG_BINGET
        size_t bytes = pickle[pos - 1] == 'h' ? 1 : 4;
        if (!fits(bytes)) return truncated;
        if (readUint(bytes) >= memo) return "a memo index that was never stored";
        ++depth;
        break;
      }
      case 'c':  // GLOBAL: module and name, each ending in a newline; pushes one entry
        for (int line = 0; line < 2; ++line) {
          const void* newline = std::memchr(pickle + pos, '\n', size - pos);
          if (!newline) return truncated;
          pos = static_cast<size_t>(static_cast<const char*>(newline) - pickle) + 1;
        }
        ++depth;
        break;
      case ']':
      case ')':
      case 0x88:
      case 0x89:
      case 'N':
      case '}':  // EMPTY_LIST/TUPLE, TRUE, FALSE, NONE, EMPTY_DICT
        ++depth;
        break;
      case '(':  // MARK
        marks.push_back(depth);
        break;
      case 't':  // TUPLE: the entries above the mark become one
      case 'l':  // LIST
        if (!popMark(mark)) return underflow;
        depth = mark + 1;
        break;
      case 'd':  // DICT: key, value pairs above the mark
        if (!popMark(mark) || (depth - mark) % 2 != 0) return underflow;
        depth = mark + 1;
        break;
      case 'e':  // APPENDS: the entries above the mark go into the list below it
        if (!popMark(mark) || mark == 0) return underflow;
        depth = mark;
        break;
      case 'u':  // SETITEMS: pairs above the mark go into the dict below it
        if (!popMark(mark) || mark == 0 || (depth - mark) % 2 != 0) return underflow;
        depth = mark;
        break;
      case 0x85:
      case 0x86:
      case 0x87: {  // TUPLE1, TUPLE2, TUPLE3
        size_t n = static_cast<unsigned char>(pickle[pos - 1]) - 0x84;
        if (depth < n) return underflow;
        depth -= n - 1;
        break;
      }
      case 's':  // SETITEM: dict, key, value -> dict
        if (depth < 3) return underflow;
        depth -= 2;
        break;
      case 'R':  // REDUCE: function, argument -> result
      case 'b':  // BUILD (the same in this unpickler)
        if (depth < 2) return underflow;
        depth -= 1;
        break;
      case 0x81:  // NEWOBJ: drops the entry on top
        if (depth < 1) return underflow;
        depth -= 1;
        break;
      case 'Q':  // BINPERSID: a storage key tuple -> a tensor
        if (depth < 1) return underflow;
        break;
      default: return "";
    }
    // Marks deeper than the stack were taken by the opcode that just ran: the unpickler keeps
    // them, and a later TUPLE would count entries from past the top.
    if (!marks.empty() && marks.back() > depth) return underflow;
  }
  return truncated;  // no STOP
}

// Whether a loaded tensor's storage lies inside [begin, begin + bytes) (the data it was read
// from) and its elements, as its sizes, strides and offset place them, inside its storage.
// Python's pickler writes a LONG1 integer in as few bytes as it needs (a tensor of 2^31 or more
// elements has a 5-byte size); libtorch 1.13's unpickler reads only 8-byte ones ("Expected
// length to be 8, got 5"). Returns the pickle with every shorter LONG1 sign-extended to 8 bytes,
// the rest copied as it is; from an opcode it does not know on, it copies without looking.
inline std::string widenShortLongs(const char* pickle, size_t size) {
  std::string out;
  out.reserve(size + 64);
  size_t pos = 0;
  auto copy = [&](size_t bytes) {
    bytes = std::min(bytes, size - pos);
    out.append(pickle + pos, bytes);
    pos += bytes;
  };
  while (pos < size) {
    unsigned char op = static_cast<unsigned char>(pickle[pos]);
    switch (op) {
      case 0x8a: {  // LONG1
        if (pos + 1 >= size) return copy(size - pos), out;
        size_t length = static_cast<unsigned char>(pickle[pos + 1]);
        if (length == 0 || length >= 8 || pos + 2 + length > size) {
          copy(2 + length);
          break;
        }
        bool negative = static_cast<unsigned char>(pickle[pos + 1 + length]) & 0x80;
        out.push_back(static_cast<char>(0x8a));
        out.push_back(8);
        out.append(pickle + pos + 2, length);
        out.append(8 - length, negative ? static_cast<char>(0xff) : '\0');
        pos += 2 + length;
        break;
      }
      case 0x80: case 'K': case 'q': case 'h': copy(2); break;
      case 'M': copy(3); break;
      case 'J': case 'r': case 'j': copy(5); break;
      case 'G': copy(9); break;
      case 'X': {
        if (pos + 5 > size) return copy(size - pos), out;
        uint64_t length = 0;
        for (int i = 0; i < 4; ++i) length |= uint64_t{static_cast<unsigned char>(pickle[pos + 1 + i])} << (8 * i);
        copy(5 + length);
        break;
      }
      case 'c':
        copy(1);
        for (int line = 0; line < 2 && pos < size; ++line) {
          const void* newline = std::memchr(pickle + pos, '\n', size - pos);
          copy(newline ? static_cast<size_t>(static_cast<const char*>(newline) - (pickle + pos)) + 1 : size - pos);
        }
        break;
      case '.': case ']': case ')': case 0x88: case 0x89: case 'N': case '}': case '(': case 't': case 'l':
      case 'd': case 'e': case 'u': case 0x85: case 0x86: case 0x87: case 's': case 'R': case 'b': case 0x81:
      case 'Q':
        copy(1);
        break;
      default:
        copy(size - pos);
    }
  }
  return out;
}

inline bool tensorWithin(const at::Tensor& t, const void* begin, size_t bytes) {
  const c10::Storage& storage = t.storage();
  size_t storage_bytes = storage.nbytes();
  if (storage_bytes > 0) {
    auto first = reinterpret_cast<uintptr_t>(begin), at = reinterpret_cast<uintptr_t>(storage.data());
    if (at < first || at - first > bytes || storage_bytes > bytes - (at - first)) return false;
  }
  int64_t lowest = t.storage_offset(), highest = t.storage_offset();
  if (lowest < 0) return false;
  for (int64_t d = 0; d < t.dim(); ++d) {
    if (t.sizes()[d] < 0) return false;
    if (t.sizes()[d] == 0) return true;  // no elements at all
  }
  for (int64_t d = 0; d < t.dim(); ++d) {
    int64_t span = 0;
    if (__builtin_mul_overflow(t.sizes()[d] - 1, t.strides()[d], &span)) return false;
    if (__builtin_add_overflow(span < 0 ? lowest : highest, span, span < 0 ? &lowest : &highest)) return false;
  }
  int64_t end_byte = 0;
  if (lowest < 0 || __builtin_mul_overflow(highest + 1, static_cast<int64_t>(t.element_size()), &end_byte))
    return false;
  return static_cast<uint64_t>(end_byte) <= storage_bytes;
}

}  // namespace kdecomp
