"""`kiln serve` whose models each lose pytriton 0.7.0's stub handshake race on their first load.

The first communication.py a model's files carry to Triton refuses the config socket to every
instance but instance 0, as a connect() landing between instance 0's bind() and listen() does;
later loads carry the real file. Used by test_serve.py to check that kiln serve recovers."""
import sys

import pytriton.models.model as pytriton_model

import kiln.serve

real_proxy_files = pytriton_model.Model.get_proxy_model_files
lost_once = set()
FIRST_LINE = "    should_stop_before_s = time.time() + timeout_s\n"


def proxy_files_that_lose_the_race_once(self):
    files = real_proxy_files(self)
    if self.model_name not in lost_once:
        lost_once.add(self.model_name)
        key = "file:%d/communication.py" % self.model_version
        source = files[key].decode()
        if FIRST_LINE not in source:
            sys.exit("lose_handshake_race.py: pytriton's get_config_from_handshake_server changed; update FIRST_LINE")
        refuse = "    raise ConnectionRefusedError(111, 'Connection refused (lose_handshake_race.py)')\n"
        files[key] = source.replace(FIRST_LINE, FIRST_LINE + refuse, 1).encode()
    return files


pytriton_model.Model.get_proxy_model_files = proxy_files_that_lose_the_race_once
sys.exit(kiln.serve.main(sys.argv[1:]))
