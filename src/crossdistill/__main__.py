from crossdistill.cli import app

app()
