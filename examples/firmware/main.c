/* otaup test firmware: entry point. */
int app_main(void);
int main(void);

int main(void)
{
    return app_main();
}
