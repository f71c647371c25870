// cocoon-agent: PID 1 of every cocoon guest. All logic lives in cocoon_agent_lib.
namespace cocoon::agent {
int AgentMain(int argc, char** argv);
}

int main(int argc, char** argv) { return cocoon::agent::AgentMain(argc, argv); }
