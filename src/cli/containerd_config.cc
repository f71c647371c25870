// The text edit behind `cocoon containerd-config`. Strategy: learn from the parsed tree what is
// there, then change the text as little as possible: replace a differing value where it stands,
// insert a missing key right under its table's `[header]`, append a missing table at the end.
// The result is parsed again and must equal the old tree plus exactly the intended keys; any
// other outcome (inline tables, dotted keys, odd layouts) is refused with the lines to add by hand.
#include "cli/containerd_config.h"

#include <fmt/format.h>

#include <toml++/toml.h>
#include <algorithm>
#include <optional>
#include <set>
#include <sstream>

namespace cocoon::cli {
namespace {

using KeyPath = std::vector<std::string>;

// Maps toml++ source positions (1-based line, column in code points) to byte offsets.
class TextIndex {
 public:
  explicit TextIndex(std::string_view text) : text_(text) {
    line_starts_.push_back(0);
    for (size_t i = 0; i < text.size(); ++i) {
      if (text[i] == '\n') line_starts_.push_back(i + 1);
    }
  }

  size_t LineCount() const { return line_starts_.size(); }

  size_t Offset(const toml::source_position& pos) const {
    size_t off = line_starts_.at(pos.line - 1);
    for (uint32_t col = 1; col < pos.column && off < text_.size(); ++col) {
      ++off;  // past the lead byte, then past UTF-8 continuation bytes
      while (off < text_.size() && (static_cast<unsigned char>(text_[off]) & 0xC0) == 0x80) ++off;
    }
    return off;
  }

  // The line without its line break.
  std::string_view Line(size_t line) const {
    size_t begin = line_starts_.at(line - 1);
    size_t end = line < line_starts_.size() ? line_starts_[line] - 1 : text_.size();
    std::string_view l = text_.substr(begin, end - begin);
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    return l;
  }

  // Offset just after the line's '\n', or the end of the text for a last line without one.
  size_t AfterLine(size_t line) const {
    return line < line_starts_.size() ? line_starts_[line] : text_.size();
  }

 private:
  std::string_view text_;
  std::vector<size_t> line_starts_;
};

std::string TomlKey(std::string_view key) {
  bool bare = !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
  return bare ? std::string(key) : fmt::format("\"{}\"", key);
}

std::string TomlString(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += fmt::format("\\u{:04X}", c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

std::string JoinPath(const KeyPath& path) {
  std::string out;
  for (const auto& k : path) {
    if (!out.empty()) out += '.';
    out += TomlKey(k);
  }
  return out;
}

std::string ShowValue(const toml::node& node) {
  if (auto s = node.value<std::string>()) return TomlString(*s);
  std::ostringstream out;
  out << toml::node_view<const toml::node>{node};
  return out.str();
}

// The key path of a `[table]` header line; nullopt for any other line (also `[[array]]`).
std::optional<KeyPath> HeaderPath(std::string_view line) {
  size_t start = line.find_first_not_of(" \t");
  if (start == std::string_view::npos || line[start] != '[') return std::nullopt;
  if (line.substr(start, 2) == "[[") return std::nullopt;
  toml::table doc;
  try {
    doc = toml::parse(line, std::string_view("header"));
  } catch (const toml::parse_error&) {
    return std::nullopt;
  }
  KeyPath path;
  const toml::table* t = &doc;
  while (t->size() == 1) {
    auto it = t->begin();
    path.emplace_back(it->first.str());
    t = it->second.as_table();
    if (!t) return std::nullopt;
  }
  if (!t->empty() || path.empty()) return std::nullopt;
  return path;
}

// Lines that lie inside a multi-line string: a '[' there does not start a header.
void MarkStringLines(const toml::node& node, std::set<size_t>* lines) {
  if (auto t = node.as_table()) {
    for (auto&& [k, v] : *t) MarkStringLines(v, lines);
  } else if (auto a = node.as_array()) {
    for (auto&& v : *a) MarkStringLines(v, lines);
  } else if (node.is_string()) {
    for (size_t l = node.source().begin.line + 1; l <= node.source().end.line; ++l)
      lines->insert(l);
  }
}

// One key the runtime table must hold: owner table path, key, value.
struct Wanted {
  KeyPath owner;
  std::string key;
  std::string value;
};

struct TextEdit {
  size_t begin;
  size_t end;  // == begin for an insertion
  std::string text;
};

class Editor {
 public:
  Editor(std::string_view text, std::string_view file_name, const ContainerdRuntimeSpec& spec)
      : text_(text), file_name_(file_name), spec_(spec), index_(text) {}

  Result<ContainerdConfigEdit> Run();

 private:
  Status Parse();
  Status PickLayout();
  std::vector<Wanted> WantedKeys() const;
  Status PlanKey(const Wanted& w, std::vector<Wanted>* missing);
  std::optional<size_t> HeaderLine(const KeyPath& path) const;
  std::string Block(const std::vector<Wanted>& keys, bool with_runtime_header) const;
  void PlanMissing(const std::vector<Wanted>& missing);
  std::string Apply() const;
  Status Verify(const std::string& new_text) const;
  Error Refuse(const std::string& why) const;
  void AddNotes();

  std::string_view text_;
  std::string file_name_;
  const ContainerdRuntimeSpec& spec_;
  TextIndex index_;
  toml::table doc_;
  bool new_file_ = false;  // no keys at all: written as a version 2 file
  KeyPath runtime_;        // path of the runtime table
  std::string nl_ = "\n";
  std::set<size_t> string_lines_;
  std::vector<TextEdit> edits_;
  std::string appended_;
  ContainerdConfigEdit out_;
};

Status Editor::Parse() {
  try {
    doc_ = toml::parse(text_, std::string_view(file_name_));
  } catch (const toml::parse_error& e) {
    return Error(Code::kInvalidArgument,
                 fmt::format("{}:{}:{}: malformed TOML: {}", file_name_, e.source().begin.line,
                             e.source().begin.column, e.description()));
  }
  if (text_.find("\r\n") != std::string_view::npos) nl_ = "\r\n";
  MarkStringLines(doc_, &string_lines_);
  return OkStatus();
}

// containerd 1.6 reads version 2 (`plugins."io.containerd.grpc.v1.cri"`) and, deprecated,
// version 1 (no `version` key; the CRI plugin is `plugins.cri`).
Status Editor::PickLayout() {
  new_file_ = doc_.empty();
  int64_t version = new_file_ ? 2 : 1;
  if (const toml::node* v = doc_.get("version")) {
    auto n = v->value<int64_t>();
    if (!v->is_integer() || !n || (*n != 1 && *n != 2)) {
      return Error(Code::kInvalidArgument,
                   fmt::format("{}:{}: version = {} is not a containerd 1.6/1.7 config version "
                               "(1 or 2); containerd 2.x configs (version 3) are not supported",
                               file_name_, v->source().begin.line, ShowValue(*v)));
    }
    version = *n;
  }
  KeyPath cri =
      version == 2 ? KeyPath{"plugins", "io.containerd.grpc.v1.cri"} : KeyPath{"plugins", "cri"};
  runtime_ = cri;
  for (const char* k : {"containerd", "runtimes"}) runtime_.push_back(k);
  runtime_.push_back(spec_.name);
  if (version == 1) {
    out_.notes.push_back(
        "version 1 config (no `version` key): the runtime goes under "
        "plugins.cri, where containerd 1.6 reads it");
  }
  const toml::node* disabled = doc_.get("disabled_plugins");
  if (disabled && disabled->is_array()) {
    for (auto&& p : *disabled->as_array()) {
      if (p.value<std::string>() == cri.back()) {
        out_.notes.push_back(
            "the CRI plugin is disabled in this file (disabled_plugins): the "
            "runtime entry matters only to CRI clients (kubelet, crictl)");
      }
    }
  }
  out_.table = JoinPath(runtime_);
  return OkStatus();
}

std::vector<Wanted> Editor::WantedKeys() const {
  std::vector<Wanted> keys = {{runtime_, "runtime_type", kCocoonRuntimeType}};
  if (!spec_.runtime_path.empty()) keys.push_back({runtime_, "runtime_path", spec_.runtime_path});
  if (!spec_.config_path.empty()) {
    KeyPath options = runtime_;
    options.push_back("options");
    keys.push_back({options, "ConfigPath", spec_.config_path});
  }
  return keys;
}

const toml::node* Lookup(const toml::table& doc, const KeyPath& path) {
  const toml::node* n = &doc;
  for (const auto& k : path) {
    const toml::table* t = n->as_table();
    if (!t) return nullptr;
    n = t->get(k);
    if (!n) return nullptr;
  }
  return n;
}

Status Editor::PlanKey(const Wanted& w, std::vector<Wanted>* missing) {
  // Every table on the way must be a table (not a value, not an array of tables).
  KeyPath path;
  for (const auto& k : w.owner) {
    path.push_back(k);
    const toml::node* n = Lookup(doc_, path);
    if (!n) break;
    if (!n->is_table()) {
      return Error(Code::kFailedPrecondition,
                   fmt::format("{}:{}: {} is not a table; fix it by hand", file_name_,
                               n->source().begin.line, JoinPath(path)));
    }
  }
  KeyPath full = w.owner;
  full.push_back(w.key);
  const toml::node* n = Lookup(doc_, full);
  if (!n) {
    missing->push_back(w);
    out_.changes.push_back(fmt::format("added {} = {}", JoinPath(full), TomlString(w.value)));
    return OkStatus();
  }
  if (n->is_table() || n->is_array_of_tables()) {
    return Error(Code::kFailedPrecondition,
                 fmt::format("{}:{}: {} is a table, expected a string; fix it by hand", file_name_,
                             n->source().begin.line, JoinPath(full)));
  }
  if (n->is_string() && n->value<std::string>() == w.value) return OkStatus();
  edits_.push_back(
      {index_.Offset(n->source().begin), index_.Offset(n->source().end), TomlString(w.value)});
  out_.changes.push_back(
      fmt::format("set {} = {} (was {})", JoinPath(full), TomlString(w.value), ShowValue(*n)));
  return OkStatus();
}

std::optional<size_t> Editor::HeaderLine(const KeyPath& path) const {
  for (size_t line = 1; line <= index_.LineCount(); ++line) {
    if (string_lines_.count(line)) continue;
    if (HeaderPath(index_.Line(line)) == path) return line;
  }
  return std::nullopt;
}

// The text of missing keys as fresh tables: the runtime table (when asked) and, under it, the
// options table.
std::string Editor::Block(const std::vector<Wanted>& keys, bool with_runtime_header) const {
  std::string out;
  std::string indent;
  KeyPath current;
  for (const auto& w : keys) {
    if (w.owner != current) {
      // The options table is indented under its runtime table when both are new.
      indent = w.owner != runtime_ && with_runtime_header ? "  " : "";
      out += fmt::format("{}[{}]{}", indent, JoinPath(w.owner), nl_);
      current = w.owner;
    }
    out += fmt::format("{}  {} = {}{}", indent, TomlKey(w.key), TomlString(w.value), nl_);
  }
  return out;
}

// Missing keys go right under their table's header when it has one; otherwise their table is
// appended at the end (valid when the table was only implied by sub-table headers).
void Editor::PlanMissing(const std::vector<Wanted>& missing) {
  std::vector<Wanted> at_end;
  bool runtime_at_end = false;
  KeyPath done;
  for (const auto& w : missing) {
    if (w.owner == done) continue;
    done = w.owner;
    std::vector<Wanted> same;
    for (const auto& m : missing) {
      if (m.owner == w.owner) same.push_back(m);
    }
    std::optional<size_t> header = HeaderLine(w.owner);
    if (!header) {
      at_end.insert(at_end.end(), same.begin(), same.end());
      runtime_at_end = runtime_at_end || w.owner == runtime_;
      continue;
    }
    std::string_view line = index_.Line(*header);
    std::string indent(line.substr(0, line.find_first_not_of(" \t")));
    size_t at = index_.AfterLine(*header);
    std::string text = at == text_.size() && !text_.empty() && text_.back() != '\n' ? nl_ : "";
    for (const auto& m : same) {
      text += fmt::format("{}  {} = {}{}", indent, TomlKey(m.key), TomlString(m.value), nl_);
    }
    edits_.push_back({at, at, text});
  }
  if (new_file_) {
    appended_ += "version = 2" + nl_;
    out_.changes.insert(out_.changes.begin(), "added version = 2");
  }
  if (!at_end.empty()) {
    if (!appended_.empty() || !text_.empty()) appended_ += nl_;  // a blank line before it
    appended_ += Block(at_end, runtime_at_end);
  }
}

std::string Editor::Apply() const {
  std::string out(text_);
  std::vector<TextEdit> edits = edits_;
  std::sort(edits.begin(), edits.end(),
            [](const TextEdit& a, const TextEdit& b) { return a.begin > b.begin; });
  for (const auto& e : edits) out.replace(e.begin, e.end - e.begin, e.text);
  if (!appended_.empty()) {
    if (!out.empty() && out.back() != '\n') out += nl_;
    out += appended_;
  }
  return out;
}

// `why` is about the runtime table (or the nearest table above it that exists).
Error Editor::Refuse(const std::string& why) const {
  KeyPath path = runtime_;
  const toml::node* n = Lookup(doc_, path);
  while (!n && !path.empty()) {
    path.pop_back();
    n = path.empty() ? nullptr : Lookup(doc_, path);
  }
  std::string where =
      n ? fmt::format("{} (line {})", JoinPath(path), n->source().begin.line) : "the runtime table";
  return Error(Code::kFailedPrecondition,
               fmt::format("cannot edit {} safely: {}: {}; nothing was changed. Make sure it "
                           "holds these keys (by hand):\n{}",
                           file_name_, where, why, Block(WantedKeys(), true)));
}

Status Editor::Verify(const std::string& new_text) const {
  toml::table expected = doc_;
  if (new_file_) expected.insert_or_assign("version", int64_t{2});
  for (const auto& w : WantedKeys()) {
    toml::table* t = &expected;
    for (const auto& k : w.owner) {
      if (!t->contains(k)) t->insert(k, toml::table{});
      t = t->get(k)->as_table();
    }
    t->insert_or_assign(w.key, w.value);
  }
  toml::table actual;
  try {
    actual = toml::parse(new_text, std::string_view(file_name_));
  } catch (const toml::parse_error&) {
    return Refuse("it is an inline table or made of dotted keys, which cannot be extended");
  }
  if (actual != expected) return Refuse("the edit would change more than its keys");
  return OkStatus();
}

Result<ContainerdConfigEdit> Editor::Run() {
  COCOON_RETURN_IF_ERROR(Parse());
  COCOON_RETURN_IF_ERROR(PickLayout());
  std::vector<Wanted> missing;
  for (const auto& w : WantedKeys()) COCOON_RETURN_IF_ERROR(PlanKey(w, &missing));
  PlanMissing(missing);
  AddNotes();
  if (out_.changes.empty()) {
    out_.text = std::string(text_);
    return out_;
  }
  out_.text = Apply();
  COCOON_RETURN_IF_ERROR(Verify(out_.text));
  return out_;
}

// Values the caller did not ask for stay; say so, since they still take effect.
void Editor::AddNotes() {
  KeyPath path = runtime_;
  path.push_back("runtime_path");
  const toml::node* n = Lookup(doc_, path);
  if (spec_.runtime_path.empty() && n) {
    out_.notes.push_back(fmt::format("keeping {} = {} (no --shim)", JoinPath(path), ShowValue(*n)));
  }
  path.back() = "options";
  path.push_back("ConfigPath");
  n = Lookup(doc_, path);
  if (spec_.config_path.empty() && n) {
    out_.notes.push_back(
        fmt::format("keeping {} = {} (no --cocoon-config)", JoinPath(path), ShowValue(*n)));
  }
}

}  // namespace

Status ValidateRuntimeName(std::string_view name) {
  bool ok = !name.empty() && name.size() <= 63 && name.front() != '-' && name.back() != '-' &&
            std::all_of(name.begin(), name.end(), [](char c) {
              return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
            });
  if (ok) return OkStatus();
  return Error(Code::kInvalidArgument,
               fmt::format("runtime name '{}' is not valid: it becomes a Kubernetes RuntimeClass "
                           "handler, so use lower-case letters, digits and '-' (at most 63)",
                           name));
}

Result<ContainerdConfigEdit> EditContainerdConfig(std::string_view text, std::string_view file_name,
                                                  const ContainerdRuntimeSpec& spec) {
  COCOON_RETURN_IF_ERROR(ValidateRuntimeName(spec.name));
  return Editor(text, file_name, spec).Run();
}

}  // namespace cocoon::cli
