from walletd.wsgi import app as app  # `gunicorn wsgi:app` from a source checkout
