#include "manifest/flow_path_repair.h"

namespace nimbus::manifest {

int RepairedText::OriginalColumn(int line, int column) const {
  int shift = 0;
  for (const Insertion& in : insertions) {
    if (in.line == line && in.column < column) ++shift;
  }
  return column - shift;
}

std::optional<RepairedText> QuoteFlowPaths(std::string_view text) {
  // A small scanner that knows just enough YAML to find flow mappings: comments, quoted
  // scalars, and which '{' '[' open a flow collection (in block context a '{' inside a plain
  // scalar is ordinary text).
  RepairedText out;
  out.text.reserve(text.size() + 16);
  int depth = 0;  // flow collection nesting
  int line = 0, column = 0;  // position in out.text
  // True where a new scalar or collection may begin: line start, or after ':' ',' '[' '{' '-'
  // '?' followed by whitespace (or directly after '[' '{' ',' in flow context).
  bool at_token_start = true;
  const size_t n = text.size();
  size_t i = 0;
  auto emit = [&](char c) {
    out.text += c;
    if (c == '\n') {
      ++line;
      column = 0;
    } else {
      ++column;
    }
  };
  auto insert = [&](char c) {
    out.insertions.push_back({line, column});
    emit(c);
  };
  while (i < n) {
    char c = text[i];
    if (c == '\n') {
      emit(c);
      ++i;
      at_token_start = true;
      continue;
    }
    if (c == ' ' || c == '\t') {
      emit(c);
      ++i;
      continue;
    }
    if (c == '#' && (i == 0 || text[i - 1] == ' ' || text[i - 1] == '\t' || text[i - 1] == '\n')) {
      while (i < n && text[i] != '\n') emit(text[i++]);
      continue;
    }
    if (at_token_start && (c == '\'' || c == '"')) {
      emit(text[i++]);
      while (i < n) {
        char q = text[i];
        if (c == '"' && q == '\\' && i + 1 < n) {
          emit(text[i++]);
          emit(text[i++]);
          continue;
        }
        emit(text[i++]);
        if (q == c) {
          if (c == '\'' && i < n && text[i] == '\'') {  // '' is an escaped quote
            emit(text[i++]);
            continue;
          }
          break;
        }
      }
      at_token_start = false;
      continue;
    }
    if ((c == '{' || c == '[') && (at_token_start || depth > 0)) {
      ++depth;
      emit(c);
      ++i;
      at_token_start = true;
      continue;
    }
    if ((c == '}' || c == ']') && depth > 0) {
      --depth;
      emit(c);
      ++i;
      at_token_start = false;
      continue;
    }
    if (c == ',' && depth > 0) {
      emit(c);
      ++i;
      at_token_start = true;
      continue;
    }
    if (depth > 0 && at_token_start && text.substr(i, 4) == "path") {
      // "path" ':' spaces '/'...: quote the value when it holds a '{'.
      size_t j = i + 4;
      while (j < n && text[j] == ' ') ++j;
      if (j + 1 < n && text[j] == ':' && (text[j + 1] == ' ' || text[j + 1] == '\t')) {
        size_t v = j + 1;
        while (v < n && (text[v] == ' ' || text[v] == '\t')) ++v;
        if (v < n && text[v] == '/') {
          size_t e = v;
          int local = 0;
          while (e < n) {
            char d = text[e];
            if (d == '\n' || d == '\r') break;
            if (d == '{') ++local;
            if (d == '}') {
              if (local == 0) break;
              --local;
            }
            if ((d == ',' || d == ']') && local == 0) break;
            if ((d == ' ' || d == '\t') && e + 1 < n && text[e + 1] == '#') break;
            ++e;
          }
          size_t end = e;
          while (end > v && (text[end - 1] == ' ' || text[end - 1] == '\t')) --end;
          std::string_view value = text.substr(v, end - v);
          if (value.find('{') != std::string_view::npos) {
            while (i < v) emit(text[i++]);
            insert('\'');
            for (char d : value) {
              emit(d);
              if (d == '\'') insert('\'');
            }
            insert('\'');
            i = end;
            at_token_start = false;
            continue;
          }
        }
      }
    }
    emit(c);
    ++i;
    // In flow context ':' followed by a space starts a value; in block context so does "- ".
    if ((c == ':' || c == '-' || c == '?') && (i >= n || text[i] == ' ' || text[i] == '\t' ||
                                               text[i] == '\n')) {
      at_token_start = true;
    } else {
      at_token_start = false;
    }
  }
  if (out.insertions.empty()) return std::nullopt;
  return out;
}

}  // namespace nimbus::manifest
