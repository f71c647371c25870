#include "shim/flags.h"

#include <map>

namespace cocoon::shim {
namespace {

bool ParseBool(const std::string& text, bool* out) {
  // The spellings Go's strconv.ParseBool accepts.
  static const std::map<std::string, bool> kValues = {
      {"1", true},    {"t", true},      {"T", true},      {"true", true},
      {"TRUE", true}, {"True", true},   {"0", false},     {"f", false},
      {"F", false},   {"false", false}, {"FALSE", false}, {"False", false}};
  auto it = kValues.find(text);
  if (it == kValues.end()) return false;
  *out = it->second;
  return true;
}

}  // namespace

Result<ShimFlags> ParseFlags(const std::vector<std::string>& args) {
  ShimFlags flags;
  std::map<std::string, std::string*> strings = {{"namespace", &flags.ns},
                                                 {"address", &flags.address},
                                                 {"publish-binary", &flags.publish_binary},
                                                 {"id", &flags.id},
                                                 {"bundle", &flags.bundle},
                                                 {"socket", &flags.socket},
                                                 {"config", &flags.config}};
  std::map<std::string, bool*> bools = {{"debug", &flags.debug}, {"v", &flags.version}};

  size_t i = 0;
  for (; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") {
      ++i;
      break;
    }
    if (arg.size() < 2 || arg[0] != '-') break;  // first positional: the action
    std::string name = arg.substr(arg[1] == '-' ? 2 : 1);
    std::string value;
    bool has_value = false;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    if (auto b = bools.find(name); b != bools.end()) {
      if (!has_value) {
        *b->second = true;
      } else if (!ParseBool(value, b->second)) {
        return Error(Code::kInvalidArgument,
                     "invalid boolean value \"" + value + "\" for flag -" + name);
      }
      continue;
    }
    auto s = strings.find(name);
    if (s == strings.end()) {
      return Error(Code::kInvalidArgument, "flag provided but not defined: -" + name);
    }
    if (!has_value) {
      if (i + 1 >= args.size()) {
        return Error(Code::kInvalidArgument, "flag needs an argument: -" + name);
      }
      value = args[++i];
    }
    *s->second = value;
  }
  if (i < args.size()) flags.action = args[i++];
  if (i < args.size()) {
    return Error(Code::kInvalidArgument,
                 "unexpected argument after " + flags.action + ": " + args[i]);
  }
  if (flags.action.empty()) {
    if (flags.version) return flags;
    return Error(Code::kInvalidArgument, "missing action: start, delete (or -v)");
  }
  if (flags.action != "start" && flags.action != "delete" && flags.action != "serve") {
    return Error(Code::kInvalidArgument,
                 "unknown action \"" + flags.action + "\" (expected start or delete)");
  }
  if (flags.ns.empty()) return Error(Code::kInvalidArgument, "-namespace is required");
  if (flags.id.empty()) return Error(Code::kInvalidArgument, "-id is required");
  return flags;
}

}  // namespace cocoon::shim
