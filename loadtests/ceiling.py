"""The ceiling: a bare Flask endpoint returning a lookup's JSON, nothing else.

`loadtests/bench.py` serves it under gunicorn with one worker, once per worker
class (sync, gthread with a node's threads, gevent), and takes the fastest as
the ceiling that every route is measured against.
"""

from flask import Flask, jsonify, request

app = Flask(__name__)
BOOK = {
    "id": 1,
    "title": "How to get a good grade in DOS in 20 minutes a day",
    "topic": "distributed systems",
    "cost": 50.0,
    "quantity": 900,
}


@app.get("/lookup/<int:book_id>")
def lookup(book_id: int):
    return jsonify(BOOK)


@app.post("/echo")
def echo():
    """For loadtests/client_choice.py: a JSON body in, the same body out."""
    return app.response_class(request.get_data(), mimetype="application/json")
