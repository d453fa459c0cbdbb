from destination_kinesis.run import run

if __name__ == "__main__":
    run()
