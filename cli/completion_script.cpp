#include "cli/completion_script.hpp"

namespace kcr::cli {

namespace {

// Both shells read the same data: for each command path the subcommands, every option,
// the options that take a value with what completes it (OPTION=KIND, choice:a,b), and
// the positionals' kinds in order (the last ends in '+' when it repeats).
struct Spec {
  std::string path, subs, opts, vopts, args;
  std::vector<std::pair<std::string, std::string>> described_subs;  // name, description
};

std::string kind_word(const OptionDoc& o) {
  if (o.kind != ValueKind::choice) return to_string(o.kind);
  std::string out = "choice:";
  for (std::size_t i = 0; i < o.choices.size(); ++i) out += (i ? "," : "") + o.choices[i];
  return out;
}

void add_word(std::string& list, const std::string& word) {
  list += (list.empty() ? "" : " ") + word;
}

std::vector<Spec> specs(const CommandDoc& root) {
  std::vector<Spec> out;
  for_each_command(root, [&](const CommandDoc& c) {
    Spec s;
    s.path = c.command();
    for (const auto& sub : c.subcommands) {
      add_word(s.subs, sub.path.back());
      s.described_subs.push_back({sub.path.back(), sub.description});
    }
    for (const auto& o : c.options) {
      for (const auto& n : o.names) {
        add_word(s.opts, n);
        if (!o.value.empty()) add_word(s.vopts, n + "=" + kind_word(o));
      }
    }
    for (std::size_t i = 0; i < c.positionals.size(); ++i) {
      const auto& p = c.positionals[i];
      std::string kind = p.positional == "command" ? "command" : kind_word(p);
      add_word(s.args, kind + (p.repeatable && i + 1 == c.positionals.size() ? "+" : ""));
    }
    out.push_back(s);
  });
  return out;
}

// Single-quoted for both shells.
std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string spec_function(const std::vector<Spec>& all, bool zsh) {
  std::string out =
      "# _kcr_spec PATH: sets subs, opts, vopts (OPTION=KIND) and args (KIND..., the last\n"
      "# repeating when it ends in +) for the command PATH ('vm start').\n"
      "_kcr_spec() {\n"
      "  subs='' opts='' vopts='' args=''\n";
  if (zsh) out += "  descs=()\n";
  out += "  case $1 in\n";
  for (const auto& s : all) {
    out += "    " + quote(s.path) + ")\n";
    out += "      subs=" + quote(s.subs) + "\n";
    out += "      opts=" + quote(s.opts) + "\n";
    out += "      vopts=" + quote(s.vopts) + "\n";
    out += "      args=" + quote(s.args) + "\n";
    if (zsh && !s.described_subs.empty()) {
      out += "      descs=(";
      for (const auto& [name, desc] : s.described_subs) {
        std::string escaped;
        for (char c : desc.substr(0, desc.find('\n')))
          escaped += c == ':' ? "\\:" : std::string(1, c);
        out += "\n        " + quote(name + ":" + escaped);
      }
      out += "\n      )\n";
    }
    out += "      ;;\n";
  }
  return out + "  esac\n}\n";
}

// The walk over the words before the cursor is the same in both shells but for the index
// of the first word and how a string splits into words.
std::string walk(bool zsh) {
  std::string first = zsh ? "2" : "1";
  std::string words = zsh ? "words" : "COMP_WORDS";
  std::string cword = zsh ? "CURRENT" : "COMP_CWORD";
  std::string split = zsh ? "${=vopts}" : "$vopts";
  return "  local cmdpath='' vm='' expect='' npos=0 i w e k\n"
         "  _kcr_global=()\n"
         "  _kcr_spec ''\n"
         "  for ((i = " +
         first + "; i < " + cword +
         "; i++)); do\n"
         "    w=${" +
         words +
         "[i]}\n"
         "    # COMP_WORDBREAKS makes '--accel=tcg' three words; the value follows the '='.\n"
         "    [[ $w == = && -n $expect ]] && continue\n"
         "    if [[ -n $expect ]]; then\n"
         "      [[ $expect == vm ]] && vm=$w\n"
         "      [[ $expect == config ]] && _kcr_global=(--config \"$w\")\n"
         "      expect=''\n"
         "      continue\n"
         "    fi\n"
         "    case $w in\n"
         "      --) return 1 ;;\n"
         "      -*)\n"
         "        for e in " +
         split +
         "; do\n"
         "          if [[ ${e%%=*} == \"$w\" ]]; then\n"
         "            expect=${e#*=}\n"
         "            [[ $w == --config ]] && expect=config\n"
         "          fi\n"
         "        done\n"
         "        ;;\n"
         "      *)\n"
         "        if [[ \" $subs \" == *\" $w \"* ]]; then\n"
         "          cmdpath=${cmdpath:+$cmdpath }$w\n"
         "          _kcr_spec \"$cmdpath\"\n"
         "          npos=0\n"
         "        else\n"
         "          _kcr_arg_kind $npos\n"
         "          [[ $k == vm ]] && vm=$w\n"
         "          npos=$((npos + 1))\n"
         "        fi\n"
         "        ;;\n"
         "    esac\n"
         "  done\n"
         "  [[ $expect == config ]] && expect=file\n";
}

}  // namespace

std::string bash_completion(const CommandDoc& root) {
  std::string out =
      "# bash completion for kcr. Generated by 'kcr __describe' from kcr's command\n"
      "# definitions: do not edit.\n\n";
  out += spec_function(specs(root), false);
  out += R"(
# _kcr_arg_kind N: sets k to the kind of positional N ('' past the last).
_kcr_arg_kind() {
  local -a a=($args)
  k=''
  if (($1 < ${#a[@]})); then
    k=${a[$1]}
  elif ((${#a[@]} > 0)) && [[ ${a[${#a[@]} - 1]} == *+ ]]; then
    k=${a[${#a[@]} - 1]}
  fi
  k=${k%+}
}

# _kcr_values KIND: completes a value of KIND.
_kcr_values() {
  local names=''
  case $1 in
    none | command | '') return 0 ;;
    file)
      compopt -o filenames 2>/dev/null
      COMPREPLY=($(compgen -f -- "$cur"))
      return 0
      ;;
    choice:*) names=${1#choice:} names=${names//,/ } ;;
    workload) [[ -n $vm ]] && names=$("$kcr" "${_kcr_global[@]}" __complete workload "$vm" 2>/dev/null) ;;
    *) names=$("$kcr" "${_kcr_global[@]}" __complete "$1" 2>/dev/null) ;;
  esac
  COMPREPLY=($(compgen -W "$names" -- "$cur"))
}

_kcr() {
  local cur=${COMP_WORDS[COMP_CWORD]} kcr=${COMP_WORDS[0]} subs opts vopts args
  local -a _kcr_global
  COMPREPLY=()
  [[ $cur == = ]] && cur=''
)";
  out += walk(false);
  out += R"(  if [[ -n $expect ]]; then
    _kcr_values "$expect"
  elif [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
  elif [[ -n $subs ]]; then
    COMPREPLY=($(compgen -W "$subs" -- "$cur"))
  else
    _kcr_arg_kind $npos
    _kcr_values "$k"
  fi
  return 0
}
complete -F _kcr kcr
)";
  return out;
}

std::string zsh_completion(const CommandDoc& root) {
  std::string out =
      "#compdef kcr\n"
      "# zsh completion for kcr. Generated by 'kcr __describe' from kcr's command\n"
      "# definitions: do not edit.\n\n";
  out += spec_function(specs(root), true);
  out += R"zsh(
# _kcr_arg_kind N: sets k to the kind of positional N ('' past the last).
_kcr_arg_kind() {
  local -a a
  a=(${=args})
  k=''
  if (($1 < ${#a})); then
    k=${a[$1 + 1]}
  elif ((${#a} > 0)) && [[ ${a[-1]} == *+ ]]; then
    k=${a[-1]}
  fi
  k=${k%+}
}

# _kcr_values KIND: completes a value of KIND.
_kcr_values() {
  local -a names
  case $1 in
    none | command | '') return 0 ;;
    file) _files; return ;;
    choice:*) names=(${(s:,:)${1#choice:}}) ;;
    workload) [[ -n $vm ]] && names=(${(f)"$("$kcr" "${_kcr_global[@]}" __complete workload "$vm" 2>/dev/null)"}) ;;
    *) names=(${(f)"$("$kcr" "${_kcr_global[@]}" __complete "$1" 2>/dev/null)"}) ;;
  esac
  compadd -- "${names[@]}"
}

_kcr() {
  local cur=${words[CURRENT]} kcr=${words[1]} subs opts vopts args
  local -a descs _kcr_global
)zsh";
  out += walk(true);
  out += R"zsh(  if [[ -n $expect ]]; then
    _kcr_values "$expect"
  elif [[ $cur == -* ]]; then
    compadd -- ${=opts}
  elif [[ -n $subs ]]; then
    _describe -t commands 'kcr command' descs
  else
    _kcr_arg_kind $npos
    _kcr_values "$k"
  fi
}

_kcr "$@"
)zsh";
  return out;
}

}  // namespace kcr::cli
