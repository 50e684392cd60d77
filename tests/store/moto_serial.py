"""moto's server, answering one request at a time.

moto's DynamoDB keeps its tables in Python objects without locks, and `moto_server` serves
requests on threads: two conditional updates of one item can interleave, so a capped counter
can overshoot under load, which real DynamoDB never lets happen. Tests that prove atomicity
across clients need the server itself to be atomic per request; serving requests one after
another gives exactly that (each UpdateItem is then indivisible, as in DynamoDB). Arguments
are moto_server's (-H HOST -p PORT).
"""

import moto.server
import werkzeug.serving

_run_simple = werkzeug.serving.run_simple


def _serial(*args, **kwargs):
    kwargs["threaded"] = False
    return _run_simple(*args, **kwargs)


moto.server.run_simple = _serial

if __name__ == "__main__":
    moto.server.main()
