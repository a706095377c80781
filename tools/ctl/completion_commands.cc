// triplinectl completion bash: the bash completion script, made from the command tree
// itself, so every subcommand and flag registered (and every value set given to
// CtlContext::Choices or Suggest) is completed without a list kept by hand. CMake runs it
// at build time and installs the result (share/bash-completion/completions/triplinectl).
#include <algorithm>
#include <set>
#include <sstream>

#include "tools/ctl/ctl_context.h"

namespace tripline::ctl {
namespace {

struct CommandInfo {
  std::string path;                 // "incidents", "completion bash"
  std::vector<std::string> words;   // flags and subcommands offered
  std::vector<std::string> files;   // flags whose value is a file
  std::vector<std::string> valued;  // flags that take a value (not completed)
  std::map<std::string, std::vector<std::string>> choices;  // flag -> values
  std::vector<std::string> positional_choices;
  bool positional_files = false;
};

std::string Words(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) out += (out.empty() ? "" : " ") + w;
  return out;
}

void Collect(const CLI::App& app, const CtlContext& ctx, const std::string& path,
             std::vector<CommandInfo>* out) {
  CommandInfo info;
  info.path = path;
  for (const CLI::Option* opt : app.get_options()) {
    if (opt->get_positional()) {
      if (const auto* c = ctx.ChoicesOf(opt)) {
        info.positional_choices.insert(info.positional_choices.end(), c->begin(), c->end());
      }
      if (opt->get_type_name() == "FILE") info.positional_files = true;
      continue;
    }
    std::vector<std::string> names;
    for (const auto& l : opt->get_lnames()) names.push_back("--" + l);
    for (const auto& s : opt->get_snames()) names.push_back("-" + s);
    for (const auto& name : names) {
      info.words.push_back(name);
      if (opt->get_expected_max() == 0) continue;  // a flag
      if (const auto* c = ctx.ChoicesOf(opt)) {
        info.choices[name] = *c;
      } else if (opt->get_type_name() == "FILE") {
        info.files.push_back(name);
      } else {
        info.valued.push_back(name);
      }
    }
  }
  for (const CLI::App* sub : app.get_subcommands({})) {
    info.words.push_back(sub->get_name());
  }
  out->push_back(std::move(info));
  for (const CLI::App* sub : app.get_subcommands({})) {
    Collect(*sub, ctx, path.empty() ? sub->get_name() : path + " " + sub->get_name(), out);
  }
}

std::string BashScript(const CLI::App& app, const CtlContext& ctx) {
  std::vector<CommandInfo> commands;
  Collect(app, ctx, "", &commands);
  const CommandInfo& top = commands.front();
  std::ostringstream s;
  s << "# bash completion for triplinectl; made by `triplinectl completion bash`.\n"
    << "_triplinectl() {\n"
    << "  local cur=\"${COMP_WORDS[COMP_CWORD]}\" prev=\"\" cmd=\"\" i w\n"
    << "  [ \"$COMP_CWORD\" -gt 0 ] && prev=\"${COMP_WORDS[COMP_CWORD-1]}\"\n"
    << "  # The subcommand path so far (skipping the values of flags that take one).\n"
    << "  local skip=0\n"
    << "  for ((i = 1; i < COMP_CWORD; i++)); do\n"
    << "    w=\"${COMP_WORDS[i]}\"\n"
    << "    if [ \"$skip\" = 1 ]; then skip=0; continue; fi\n"
    << "    case \"$w\" in\n";
  // Flags taking a value, anywhere in the tree: their next word is not a subcommand.
  std::set<std::string> valued;
  for (const auto& c : commands) {
    for (const auto& v : c.valued) valued.insert(v);
    for (const auto& v : c.files) valued.insert(v);
    for (const auto& [flag, values] : c.choices) valued.insert(flag);
  }
  std::string pattern;
  for (const auto& v : valued) pattern += (pattern.empty() ? "" : "|") + v;
  s << "      " << pattern << ") skip=1 ;;\n"
    << "      -*) ;;\n"
    << "      *)\n"
    << "        case \"${cmd:+$cmd }$w\" in\n";
  for (size_t k = 1; k < commands.size(); ++k) {
    s << "          \"" << commands[k].path << "\") cmd=\"" << commands[k].path << "\" ;;\n";
  }
  s << "        esac ;;\n"
    << "    esac\n"
    << "  done\n"
    << "  local words=\"\" values=\"\"\n"
    << "  case \"$cmd\" in\n";
  const std::vector<std::string> global = top.words;
  for (const auto& c : commands) {
    std::vector<std::string> words = c.words;
    if (!c.path.empty()) {
      // Connection flags work after a subcommand too.
      for (const auto& g : global) {
        if (g.rfind("-", 0) == 0 && std::find(words.begin(), words.end(), g) == words.end()) {
          words.push_back(g);
        }
      }
    }
    s << "    \"" << c.path << "\")\n"
      << "      case \"$prev\" in\n";
    for (const auto& [flag, values] : c.choices) {
      s << "        " << flag << ") COMPREPLY=($(compgen -W \"" << Words(values)
        << "\" -- \"$cur\")); return ;;\n";
    }
    std::vector<std::string> files = c.files, others = c.valued;
    if (!c.path.empty()) {
      files.insert(files.end(), top.files.begin(), top.files.end());
      others.insert(others.end(), top.valued.begin(), top.valued.end());
    }
    if (!files.empty()) {
      std::string p;
      for (const auto& f : files) p += (p.empty() ? "" : "|") + f;
      s << "        " << p << ") COMPREPLY=($(compgen -f -- \"$cur\")); return ;;\n";
    }
    if (!others.empty()) {
      std::string p;
      for (const auto& f : others) p += (p.empty() ? "" : "|") + f;
      s << "        " << p << ") COMPREPLY=(); return ;;\n";
    }
    s << "      esac\n"
      << "      words=\"" << Words(words) << "\"\n"
      << "      values=\"" << Words(c.positional_choices) << "\"\n";
    if (c.positional_files) {
      s << "      if [[ \"$cur\" != -* ]]; then COMPREPLY=($(compgen -f -- \"$cur\")); return; "
           "fi\n";
    }
    s << "      ;;\n";
  }
  s << "  esac\n"
    << "  if [[ \"$cur\" == -* ]]; then\n"
    << "    COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n"
    << "  else\n"
    << "    local subs=\"\"\n"
    << "    for w in $words; do [[ \"$w\" != -* ]] && subs=\"$subs $w\"; done\n"
    << "    COMPREPLY=($(compgen -W \"$subs $values\" -- \"$cur\"))\n"
    << "  fi\n"
    << "}\n"
    << "complete -F _triplinectl triplinectl\n";
  return s.str();
}

}  // namespace

void RegisterCompletionCommands(CLI::App& app, CtlContext& ctx) {
  CLI::App* completion = app.add_subcommand("completion", "print a shell completion script (bash)");
  ctx.AddCommand(*completion, "bash",
                 "the bash completion script: source it, or install it as "
                 "/usr/share/bash-completion/completions/triplinectl",
                 [&ctx, &app] {
                   ctx.out << BashScript(app, ctx);
                   return int{kExitOk};
                 });
}

}  // namespace tripline::ctl
